"""Documents: index two texts with the built-in `document-processing` job, then search them by
meaning, offline (the all-MiniLM-L6-v2 embeddings agentqueue ships). The index is the
organization's: another organization searching finds nothing of it.

    agentqueue worker examples.documents:app      # from the repository's root
    python examples/documents.py
"""

from __future__ import annotations

import asyncio

import agentqueue

app = agentqueue.App()  # settings from the environment, as the service's; the built-in types

DOCUMENTS = {
    "returns": "# Returns\n\nUnopened items may be returned within 30 days for a full refund.",
    "shipping": "# Shipping\n\nOrders leave our warehouse within two working days.",
}


async def main() -> None:
    owner = agentqueue.Owner(user_id="example-user", org_id="example-org")
    jobs = [await app.enqueue("document-processing", {"documentId": doc, "content": text,
                                                      "contentType": "markdown"}, owner=owner)
            for doc, text in DOCUMENTS.items()]
    for job in jobs:
        result = await job.wait(timeout=120)
        print(f"indexed {result['documentId']}: {result['chunks']} chunk(s)")
    found = await app.search_documents("can I send back something I bought?", owner=owner,
                                       limit=1)
    best = found.matches[0]
    print(f"best match: {best.document_id} ({best.score:.2f}): {best.text}")
    other = agentqueue.Owner(user_id="someone", org_id="another-org")
    theirs = await app.search_documents("refund", owner=other)
    print(f"another organization finds: {len(theirs.matches)}")
    await app.close()


if __name__ == "__main__":
    asyncio.run(main())
