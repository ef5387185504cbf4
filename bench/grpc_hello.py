"""The machine's grpc.aio ceiling: CatalogService.GetProduct answering one fixed product, no
guard, no database (the generated stubs, so the message costs the same as the monolith's).

    python bench/grpc_hello.py PORT
"""

from __future__ import annotations

import sys

import grpc
import uvloop
from google.protobuf.timestamp_pb2 import Timestamp

from archway.proto.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from archway.proto.type.v1.money_pb2 import Money

PRODUCT = catalog_pb2.Product(
    id="0190a6a0-0000-7000-8000-000000000000", sku="HELLO-1", name="Hello", description="",
    category="bench", price=Money(amount=1999, currency="EUR"), active=True, available=10,
    created_at=Timestamp(seconds=1_700_000_000), updated_at=Timestamp(seconds=1_700_000_000),
    version=1)


class Hello(catalog_pb2_grpc.CatalogServiceServicer):
    async def GetProduct(
        self, request: catalog_pb2.GetProductRequest, context: object
    ) -> catalog_pb2.GetProductResponse:
        return catalog_pb2.GetProductResponse(product=PRODUCT)


async def serve(port: int) -> None:
    server = grpc.aio.server()
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(Hello(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1])))
