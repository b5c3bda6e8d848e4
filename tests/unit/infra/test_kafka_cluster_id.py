"""A KRaft cluster id never starts with ``-``, which ``kafka-storage format -t`` takes for an option."""

from __future__ import annotations

from infra.local.kafka import new_cluster_id


def test_an_id_that_would_start_with_a_dash_is_drawn_again() -> None:
    draws = iter([b"\xf8" + bytes(15), bytes(range(16))])  # 0xf8...: URL-safe base64 "-A..."
    cluster_id = new_cluster_id(lambda: next(draws))
    assert cluster_id == "AAECAwQFBgcICQoLDA0ODw" and len(cluster_id) == 22


def test_ids_are_url_safe_base64_of_16_bytes() -> None:
    for _ in range(500):
        cluster_id = new_cluster_id()
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
