"""The examples in docs/actors.md run as written (extracted and served for real)."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp

from tests.serverproc import ServerProcess

DOCS = Path(__file__).parent.parent / "docs" / "actors.md"


def first_python_block(text: str) -> str:
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


async def test_actors_md_example(tmp_path):
    (tmp_path / "counter_app.py").write_text(first_python_block(DOCS.read_text()))
    srv = ServerProcess(tmp_path / "docs.db", env={"PYTHONPATH": str(tmp_path)},
                        args=("--app", "counter_app:registry")).start()
    try:
        async with aiohttp.ClientSession() as session:
            async def post(path: str, body: dict) -> dict:
                resp = await session.post(f"{srv.http_url}{path}", json=body)
                return await resp.json()

            # The calls the page shows, with the answers it shows.
            assert await post("/api/actors/counter/ann/actions/increment",
                              {"args": [2]}) == {"result": 2}
            assert await post("/api/actors/scoreboard/main/actions/total",
                              {"args": [["ann", "bob"]]}) == {"result": 2}
            refused = await post("/api/actors/counter/ann/actions/increment", {"args": [0]})
            assert refused["error"]["code"] == "bad_step"
    finally:
        srv.stop()


def test_every_python_block_in_the_docs_defines_working_actors():
    """Each snippet runs as a module (with `import collab` prepended): classes build,
    kinds are valid, decorators apply."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert len(blocks) >= 3
    for block in blocks:
        exec(compile("import collab\n" + block, str(DOCS), "exec"), {})
