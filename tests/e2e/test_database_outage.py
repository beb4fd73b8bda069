"""The database drops every connection under the service: a clear, retryable answer, nothing lost."""

from __future__ import annotations

import pytest

from orchestrator.devstack import DEFAULT_POSTGRES_URL, postgres_admin
from tests.e2e.helpers import payment_body
from tests.fixtures.stack import dedicated_stack

pytestmark = pytest.mark.e2e


def drop_every_connection(database_url: str) -> None:
    database = database_url.rpartition("/")[2]
    postgres_admin(DEFAULT_POSTGRES_URL, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                         f"WHERE datname = '{database}' AND pid <> pg_backend_pid()")


async def test_dropped_connections_get_a_retryable_503_and_the_retry_charges_once(tmp_path):
    with dedicated_stack(tmp_path) as stack:
        async with stack.client() as client:
            for n in range(5):  # connections in steady use: pooled, not pinged before each use
                assert (await client.post("/v1/payments", json=payment_body(amount=2000 + n))).status_code == 201
            drop_every_connection(stack.database_url)

            answers = []
            for _ in range(3):
                response = await client.post("/v1/payments", json=payment_body(amount=3000),
                                             headers={"Idempotency-Key": "after-the-drop"})
                answers.append(response)
                if response.status_code != 503:
                    break
            assert answers[-1].status_code == 201, [a.text for a in answers]
            for failed in answers[:-1]:
                assert failed.json()["error"]["code"] == "database_unavailable"
                assert failed.headers["Retry-After"] == "1"
            payment = answers[-1].json()
            assert payment["status"] == "succeeded"
        # The stack's teardown checks the ledgers: one charge for the payment, none lost.
