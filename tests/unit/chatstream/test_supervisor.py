from chatstream.cli.supervisor import RESTART_MAX_S, restart_delay


def test_restarts_back_off_doubling_to_a_ceiling() -> None:
    assert [restart_delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert restart_delay(50) == RESTART_MAX_S
