"""Verifies Standard Webhooks signatures with the reference `standardwebhooks` package.

Reads {"secret": "whsec_…", "messages": [{"headers": {...}, "body": "..."}]} on stdin and
prints one line per message: "ok <webhook-id>" or "bad <reason>". The package parses a verified
body as JSON; a body that is not JSON (a form a provider posted, forwarded as it came) is
verified all the same.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main():
    request = json.load(sys.stdin)
    hook = Webhook(request["secret"])
    for message in request["messages"]:
        try:
            hook.verify(message["body"], message["headers"])
            print("ok", message["headers"].get("webhook-id"))
        except json.JSONDecodeError:
            print("ok", message["headers"].get("webhook-id"))
        except WebhookVerificationError as e:
            print("bad", e)


if __name__ == "__main__":
    main()
