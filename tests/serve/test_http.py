"""The HTTP layer alone: a handler's bug answers 500 and the server keeps serving."""

from __future__ import annotations

import asyncio

from trackplan.serve.http import Request, Response, bound_port, close, start


def test_a_failing_handler_answers_500_and_the_next_request_is_served() -> None:
    async def handler(request: Request) -> Response:
        if request.path == "/boom":
            raise KeyError("secret-value")
        return Response(200, b"{}")

    async def scenario() -> list[bytes]:
        server = await start(handler, port=0)
        port = bound_port(server)
        answers = []
        for path in ("/boom", "/fine"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            answers.append(await reader.read())
            writer.close()
        await close(server)
        return answers

    boom, fine = asyncio.run(scenario())
    assert boom.startswith(b"HTTP/1.1 500") and b"secret-value" not in boom
    assert fine.startswith(b"HTTP/1.1 200")
