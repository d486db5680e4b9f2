"""Files through the openai SDK: upload, list, retrieve, content, delete."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI

from synthtune_cli.emulator import OpenAIEmulator
from tests.emulator.world import START


def test_file_round_trip(client: OpenAI, emulator: OpenAIEmulator) -> None:
    content = b'{"messages": []}\n' * 3
    uploaded = client.files.create(file=("train.jsonl", content), purpose="fine-tune")

    assert uploaded.id.startswith("file-")
    assert (uploaded.filename, uploaded.bytes, uploaded.purpose) == ("train.jsonl", len(content), "fine-tune")
    assert uploaded.created_at == int(START) and uploaded.status == "processed"
    assert client.files.retrieve(uploaded.id) == uploaded
    assert client.files.content(uploaded.id).content == content
    assert emulator.files[uploaded.id].content == content


def test_bytes_upload_is_named_upload_by_the_sdk(client: OpenAI) -> None:
    uploaded = client.files.create(file=b"data", purpose="batch")

    assert uploaded.filename == "upload"


def test_list_is_newest_first_filtered_and_paged(client: OpenAI) -> None:
    ids = [client.files.create(file=(f"f{index}.jsonl", b"x"), purpose="fine-tune").id for index in range(3)]
    batch = client.files.create(file=("b.jsonl", b"x"), purpose="batch").id

    assert [file.id for file in client.files.list()] == [batch, *reversed(ids)]
    assert [file.id for file in client.files.list(purpose="fine-tune", order="asc")] == ids
    first = client.files.list(purpose="fine-tune", limit=2)
    assert [file.id for file in first.data] == [ids[2], ids[1]] and first.has_more
    # The SDK's auto-pagination follows `after` to the end.
    assert [file.id for file in client.files.list(purpose="fine-tune", limit=1)] == list(reversed(ids))


def test_delete_then_404(client: OpenAI, emulator: OpenAIEmulator) -> None:
    file_id = client.files.create(file=("a.jsonl", b"x"), purpose="fine-tune").id

    deleted = client.files.delete(file_id)

    assert deleted.deleted and deleted.id == file_id
    assert file_id not in emulator.files
    with pytest.raises(openai.NotFoundError, match=file_id):
        client.files.retrieve(file_id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(file_id)


def test_upload_needs_a_known_purpose(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as error:
        client.files.create(file=("a.jsonl", b"x"), purpose="homework")

    assert error.value.param == "purpose"
