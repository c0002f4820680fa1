"""OpenAI's Files: the upload's form fields (CreateFileRequest is multipart, so no pydantic model reads it)
and the OpenAIFile object of a stored file."""

from __future__ import annotations

from typing import Any

from knowledge.models import StoredFile

# The purposes we keep files for (what knowledge bases and file_search use); others are refused by name.
PURPOSES = tuple(StoredFile.Purpose.values)
MAX_FILENAME_CHARS = 255


def file_object(stored: StoredFile) -> dict[str, Any]:
    """OpenAIFile."""
    return {
        "id": stored.public_id,
        "object": "file",
        "bytes": stored.bytes,
        "created_at": int(stored.created_at.timestamp()),
        "filename": stored.filename,
        "purpose": stored.purpose,
        "status": "processed",  # deprecated in the spec, still required by it
    }
