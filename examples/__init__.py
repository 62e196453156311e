"""Example applications built on arketic_cache (``make serve`` runs ``examples.app``)."""
