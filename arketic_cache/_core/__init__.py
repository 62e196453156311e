"""The pure core: flows that decide everything without I/O and yield effects for a driver.

Nothing in this package imports redis, asyncio, threading or time.
"""
