"""The stream schema the consumer-group tests share (also imported by their worker process)."""

from __future__ import annotations

from pydantic import BaseModel

from arketic_cache import TTL, StreamKey


class Order(BaseModel):
    order_id: int
    item: str


class OrdersKey(StreamKey[Order]):
    template = "orders:{shop}"
    ttl = TTL.DEFAULT
    shop: str
