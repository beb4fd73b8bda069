"""transport.send against tiny local servers: what each network fault means for the money."""

from __future__ import annotations

import asyncio
import logging
import socket
from contextlib import asynccontextmanager

import httpx
import pytest

from orchestrator.providers.base import Outcome, Timeouts
from orchestrator.providers.transport import (
    HttpRequest,
    HttpResponse,
    TransportFailure,
    classify_exception,
    http_timeout,
    send,
)

SECRET = "sk_test_51TransportSecret"
FAST = Timeouts(connect_s=0.5, read_s=0.3)


def unused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def tcp_server(handler):
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return head + body


def request_to(url: str) -> HttpRequest:
    return HttpRequest(
        method="POST",
        url=f"{url}/v1/payment_intents",
        headers={"Authorization": f"Bearer {SECRET}", "Idempotency-Key": "att_1"},
        form=(("amount", "1099"), ("currency", "eur"), ("metadata[payment_id]", "pay_1")),
    )


async def test_connection_refused_is_transient():
    async with httpx.AsyncClient() as client:
        answer = await send(client, request_to(f"http://127.0.0.1:{unused_port()}"), FAST)
    assert isinstance(answer, TransportFailure)
    assert answer.outcome is Outcome.TRANSIENT
    assert answer.reason == "connect_error"


async def test_server_that_never_answers_is_ambiguous_read_timeout():
    seen = asyncio.Event()

    async def silent(reader, writer):
        await read_request(reader)
        seen.set()
        await asyncio.sleep(5)
        writer.close()

    async with tcp_server(silent) as url, httpx.AsyncClient() as client:
        started = asyncio.get_running_loop().time()
        answer = await send(client, request_to(url), FAST)
        took = asyncio.get_running_loop().time() - started
    assert seen.is_set(), "the request reached the server"
    assert isinstance(answer, TransportFailure)
    assert answer.outcome is Outcome.AMBIGUOUS
    assert answer.reason == "read_timeout"
    assert 0.25 <= took < 2.0


async def test_close_right_after_accept_is_ambiguous():
    async def slam(reader, writer):
        writer.close()

    async with tcp_server(slam) as url, httpx.AsyncClient() as client:
        answer = await send(client, request_to(url), FAST)
    assert isinstance(answer, TransportFailure)
    assert answer.outcome is Outcome.AMBIGUOUS  # the bytes may have left: never assume nothing happened


async def test_disconnect_mid_response_is_ambiguous():
    async def half(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"id\": \"pi_")
        await writer.drain()
        writer.close()

    async with tcp_server(half) as url, httpx.AsyncClient() as client:
        answer = await send(client, request_to(url), FAST)
    assert isinstance(answer, TransportFailure)
    assert answer.outcome is Outcome.AMBIGUOUS


async def test_complete_response_is_parsed_and_the_form_is_sent_in_order():
    received: list[bytes] = []

    async def ok(reader, writer):
        received.append(await read_request(reader))
        body = b'{"id": "pi_1", "status": "succeeded"}'
        writer.write(
            b"HTTP/1.1 402 Payment Required\r\nContent-Type: application/json\r\nRetry-After: 3\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    async with tcp_server(ok) as url, httpx.AsyncClient() as client:
        answer = await send(client, request_to(url), FAST)
    assert isinstance(answer, HttpResponse)
    assert answer.status == 402
    assert answer.body == {"id": "pi_1", "status": "succeeded"}
    assert answer.header("Retry-After") == "3" and answer.headers["retry-after"] == "3"
    assert answer.elapsed_s > 0
    raw = received[0]
    assert raw.startswith(b"POST /v1/payment_intents HTTP/1.1\r\n")
    assert b"content-type: application/x-www-form-urlencoded" in raw.lower()
    assert raw.endswith(b"amount=1099&currency=eur&metadata%5Bpayment_id%5D=pay_1")


async def test_non_json_body_is_kept_as_text():
    async def html(reader, writer):
        await read_request(reader)
        body = b"<html>503 Service Unavailable</html>"
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        writer.close()

    async with tcp_server(html) as url, httpx.AsyncClient() as client:
        answer = await send(client, request_to(url), FAST)
    assert isinstance(answer, HttpResponse)
    assert answer.status == 503 and answer.body is None and "Service Unavailable" in answer.text


async def test_no_free_pooled_connection_is_transient():
    async def silent(reader, writer):
        await asyncio.sleep(5)
        writer.close()

    limits = httpx.Limits(max_connections=1)
    async with tcp_server(silent) as url, httpx.AsyncClient(limits=limits) as client:
        hog = asyncio.create_task(send(client, request_to(url), Timeouts(connect_s=0.5, read_s=2.0)))
        await asyncio.sleep(0.1)
        answer = await send(client, request_to(url), Timeouts(connect_s=0.1, read_s=2.0))
        hog.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hog
    assert isinstance(answer, TransportFailure)
    assert answer.outcome is Outcome.TRANSIENT
    assert answer.reason == "pool_timeout"


async def test_every_phase_gets_an_explicit_timeout():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(request.extensions["timeout"])
        return httpx.Response(200, json={})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        await send(client, request_to("http://provider.test"), Timeouts(connect_s=0.7, read_s=3.0))
    assert seen == {"connect": 0.7, "read": 3.0, "write": 3.0, "pool": 0.7}
    assert http_timeout(Timeouts(connect_s=1, read_s=2)) == httpx.Timeout(connect=1, read=2, write=2, pool=1)


@pytest.mark.parametrize(
    "exc, outcome",
    [
        (httpx.ConnectError("refused"), Outcome.TRANSIENT),
        (httpx.ConnectTimeout("slow connect"), Outcome.TRANSIENT),
        (httpx.PoolTimeout("no connection"), Outcome.TRANSIENT),
        (httpx.ReadTimeout("slow answer"), Outcome.AMBIGUOUS),
        (httpx.WriteTimeout("slow send"), Outcome.AMBIGUOUS),
        (httpx.ReadError("reset"), Outcome.AMBIGUOUS),
        (httpx.WriteError("broken pipe"), Outcome.AMBIGUOUS),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), Outcome.AMBIGUOUS),
        (httpx.UnsupportedProtocol("ftp"), Outcome.CONFIG_ERROR),
        (RuntimeError("something else"), Outcome.AMBIGUOUS),
    ],
)
async def test_exception_mapping(exc, outcome):
    assert classify_exception(exc)[0] is outcome

    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        answer = await send(client, request_to("http://provider.test"), FAST)
    assert isinstance(answer, TransportFailure) and answer.outcome is outcome


async def test_cancellation_propagates():
    async def silent(reader, writer):
        await asyncio.sleep(5)
        writer.close()

    async with tcp_server(silent) as url, httpx.AsyncClient() as client:
        task = asyncio.create_task(send(client, request_to(url), Timeouts(connect_s=0.5, read_s=3.0)))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_secrets_stay_out_of_logs_reprs_and_failures(caplog):
    caplog.set_level(logging.DEBUG, logger="orchestrator.providers.transport")
    request = request_to(f"http://127.0.0.1:{unused_port()}")
    async with httpx.AsyncClient() as client:
        failure = await send(client, request, FAST)

    def ok(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"ok": True})

    async with httpx.AsyncClient(transport=httpx.MockTransport(ok)) as client:
        success = await send(client, request, FAST)
    assert isinstance(failure, TransportFailure) and isinstance(success, HttpResponse)
    assert caplog.records, "the debug log line is the hook point and must exist"
    for text in (caplog.text, repr(request), str(request), repr(failure), failure.message):
        assert SECRET not in text
    assert "<redacted>" in repr(request)
    assert "Idempotency-Key" in repr(request)  # only secret headers are hidden
