"""What the links of one message cost a worker: its unsubscribe link and its click links.

Per message, as rendering does it: the unsubscribe URL, then an HTML and a text body with two
links each rewritten into click links (one URL written in the template, one built per contact).
No store: the step's row is made once per execution step, not per message.
Prints one JSON line: µs per message, and the length of an unsubscribe URL.
    python bench/link_signing.py --messages 20000
"""

from __future__ import annotations

import argparse
import json
import time

from engine.integrations.links import LinkSigner, LinkTokens

BASE = "https://links.example.com"
SHOP = "https://shop.example.com/sale?a=1&b=2"


def main() -> None:
    """Time ``--messages`` messages' links and print the result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    signer = LinkSigner(LinkTokens("a-secret-key", ["an-older-key"]), BASE, 123_456, [SHOP])
    contact_id = 1_000_000
    bodies = [
        {
            "html": f'<p>Hi Ana, <a href="{SHOP.replace("&", "&amp;")}">sale</a> '
            f'<a href="https://shop.example.com/me?c={contact_id + i}">me</a></p>',
            "text": f"Hi Ana, see {SHOP} or https://shop.example.com/me?c={contact_id + i}.",
        }
        for i in range(100)
    ]
    start = time.perf_counter()
    for i in range(args.messages):
        contact = contact_id + i

        def track(url: str) -> str:
            return signer.click_url(contact, url)  # noqa: B023 - used in this iteration only

        signer.unsubscribe_url(contact)
        signer.rewrite(bodies[i % 100], track)
    with_clicks = (time.perf_counter() - start) / args.messages
    start = time.perf_counter()
    for i in range(args.messages):
        signer.unsubscribe_url(contact_id + i)
    unsubscribe_only = (time.perf_counter() - start) / args.messages
    result = {
        "messages": args.messages,
        "us_per_message_unsubscribe_and_4_click_links": round(with_clicks * 1e6, 1),
        "us_per_unsubscribe_link": round(unsubscribe_only * 1e6, 1),
        "unsubscribe_url_length": len(signer.unsubscribe_url(contact_id)),
        "unsubscribe_url": signer.unsubscribe_url(contact_id),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
