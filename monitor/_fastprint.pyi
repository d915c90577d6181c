"""Type stub of the optional C accelerator monitor/_fastprint.c (see its header comment)."""

from collections.abc import Callable, Mapping

def scan(
    title: str,
    body: str,
    word_info: Callable[[str], tuple[int, int, int]],
    k: int,
    sample: int,
    lead_words: int,
    head_words: int,
    max_tokens: int,
    cache_max: int,
    /,
) -> tuple[bytes, bytes, bytes, bytes, bytes, bytes, int]: ...
def words(text: str, /) -> list[str]: ...
def cache_size() -> int: ...
def probe(
    buckets: list[bytearray | None], raw: bytes, live: Mapping[int, object], max_postings: int, /
) -> tuple[dict[int, int], int]: ...
def post(buckets: list[bytearray | None], raw: bytes, seq: int, /) -> None: ...
