"""The machine's FastAPI ceiling: one route, no middleware, no database; and bare Strawberry.

Served by ``bench/run.py`` with the same uvicorn settings as the application, so the ratio of
an application route's req/s to this route's isolates the cost of the application itself.
"""

import strawberry
from fastapi import FastAPI
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.fastapi import GraphQLRouter

app = FastAPI()


@strawberry.type
class Money:
    amount: int
    currency: str


@strawberry.type
class Product:
    id: strawberry.ID
    name: str
    price: Money


@strawberry.type
class Query:
    @strawberry.field
    async def product(self, id: strawberry.ID) -> Product:
        return Product(id=id, name="Classic Field Guide", price=Money(amount=499, currency="EUR"))


# Bare Strawberry with the caches the peers measured (bench/README.md: `graphql_bare`).
schema = strawberry.Schema(query=Query, extensions=[ParserCache, ValidationCache])
app.include_router(GraphQLRouter(schema, path="/graphql", graphql_ide=None))


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}
