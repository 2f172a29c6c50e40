"""--port-file: the bound port is written whole, for harnesses that start `serve --port 0`."""

from pathlib import Path

from labelwise_server.grpc.server import write_port_file


def test_port_file_holds_the_port_and_no_partial_file_stays(tmp_path: Path) -> None:
    path = tmp_path / "port"
    write_port_file(str(path), 43127)
    assert path.read_text(encoding="ascii") == "43127\n"
    write_port_file(str(path), 50051)  # a restart overwrites it
    assert path.read_text(encoding="ascii") == "50051\n"
    assert [p.name for p in tmp_path.iterdir()] == ["port"]
