"""The machine's FastAPI ceiling: one route, no middleware, no database.

Served by ``bench/run.py`` with the same uvicorn settings as the application, so the ratio of
an application route's req/s to this route's isolates the cost of the application itself.
"""

from fastapi import FastAPI

app = FastAPI()


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}
