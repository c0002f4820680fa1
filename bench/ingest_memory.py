"""Memory while ingesting a 200 MB batch of PDFs: the ingesting process's peak RSS, file by file.

    .venv/bin/python bench/ingest_memory.py [--files 4] [--megabytes 50] [--pages 60]

Builds the PDFs with pypdf (each some pages of text and one large incompressible image that makes up its
size), then ingests them in a child process exactly as the worker does (`knowledge.services.ingest`: read,
extract, chunk, store; full text only, so the embedding calls are left out) and prints its peak RSS after
start-up and after each file. Bounded memory: the peak follows the largest file, not the batch. Everything
runs on a fresh database `chatsite_bench_ingest` of the embedded PostgreSQL; the files go to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = ["gateway", "ledger", "budget", "socket", "model", "upstream", "tool", "knowledge", "passage", "search"]


def _pdf(path: Path, megabytes: int, pages: int, seed: int) -> None:
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject, NumberObject

    writer = PdfWriter()
    font = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
    )
    side = int((megabytes * 1_000_000) ** 0.5)
    image = DecodedStreamObject()
    image.set_data(os.urandom(side * side))
    image.update(
        {
            NameObject("/Type"): NameObject("/XObject"),
            NameObject("/Subtype"): NameObject("/Image"),
            NameObject("/Width"): NumberObject(side),
            NameObject("/Height"): NumberObject(side),
            NameObject("/ColorSpace"): NameObject("/DeviceGray"),
            NameObject("/BitsPerComponent"): NumberObject(8),
        }
    )
    image_ref = writer._add_object(image)
    for number in range(pages):
        page = writer.add_blank_page(612, 792)
        lines = [" ".join(WORDS[(seed + number + i + j) % len(WORDS)] for j in range(12)) for i in range(40)]
        text = " T* ".join(f"({line}) Tj" for line in lines)
        content = DecodedStreamObject()
        draw = "q 100 0 0 100 400 600 cm /Im0 Do Q " if number == 0 else ""
        content.set_data(f"{draw}BT /F1 10 Tf 12 TL 40 760 Td {text} ET".encode())
        page[NameObject("/Contents")] = writer._add_object(content)
        resources = {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        if number == 0:
            resources[NameObject("/XObject")] = DictionaryObject({NameObject("/Im0"): image_ref})
        page[NameObject("/Resources")] = DictionaryObject(resources)
    with path.open("wb") as out:
        writer.write(out)


def _rss_mib() -> tuple[float, float]:
    """(now, peak) resident memory of this process in MiB."""
    now = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            now = int(line.split()[1]) / 1024
    return now, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ingest(folder: Path) -> None:
    """The child: ingest every PDF of `folder` into one store, printing memory as it goes."""
    from bench.conversation_list import setup_django

    setup_django("chatsite_bench_ingest")
    from django.test.utils import override_settings

    from accounts.models import User
    from knowledge import services

    user = User.objects.create_user("ingest", "ingest@example.com", "bench-password-not-used")
    files = sorted(folder.glob("*.pdf"))
    with override_settings(KNOWLEDGE_QUOTA_BYTES=10 * 1024**3, KNOWLEDGE_MAX_FILE_BYTES=1024**3):
        store = services.create_store(user, "batch")
        print(f"  started up: RSS {_rss_mib()[0]:.0f} MiB, peak {_rss_mib()[1]:.0f} MiB", flush=True)
        total = 0
        for path in files:
            data = path.read_bytes()
            total += len(data)
            entry = services.add_file(store, services.store_file(user, path.name, data))
            del data
            services.ingest(entry.pk)
            entry.refresh_from_db()
            now, peak = _rss_mib()
            print(
                f"  {path.name}: {path.stat().st_size / 1e6:.0f} MB, {entry.status}, "
                f"{total / 1e6:.0f} MB so far; RSS {now:.0f} MiB, peak {peak:.0f} MiB",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--megabytes", type=int, default=50, help="size of each PDF")
    parser.add_argument("--pages", type=int, default=60, help="pages of text in each PDF")
    parser.add_argument("--ingest", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ingest:
        ingest(Path(args.ingest))
        return
    with tempfile.TemporaryDirectory(prefix="ingest-memory-") as folder:
        for n in range(args.files):
            _pdf(Path(folder) / f"batch-{n}.pdf", args.megabytes, args.pages, n)
        size = sum(p.stat().st_size for p in Path(folder).glob("*.pdf"))
        print(f"{args.files} PDFs, {size / 1e6:.0f} MB in all, {args.pages} pages of text each; ingesting:")
        subprocess.run([sys.executable, __file__, "--ingest", folder], check=True, cwd=ROOT)


if __name__ == "__main__":
    main()
