"""The peer of `bench/startup.py`: a FastAPI app with one route, served by `python -m uvicorn`."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def root() -> dict[str, str]:
    return {"status": "ok"}
