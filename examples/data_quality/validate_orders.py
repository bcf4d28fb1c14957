"""Check each order row (integer ids, decimal amount, known currency); stop at the first bad one."""

import csv
import json
import os
import sys
from decimal import Decimal, InvalidOperation

CURRENCIES = {"EUR", "USD", "GBP", "JPY"}

params = json.loads(os.environ["BUNSUI_PARAMS"])
with open(params["input_file"], newline="") as handle:
    for line, row in enumerate(csv.DictReader(handle), start=2):
        try:
            int(row["order_id"])
            int(row["customer_id"])
            Decimal(row["amount"])
            if row["currency"] not in CURRENCIES:
                raise ValueError(f"unknown currency {row['currency']!r}")
        except (InvalidOperation, ValueError) as exc:
            detail = (
                exc if isinstance(exc, ValueError) else f"amount {row['amount']!r} is not a number"
            )
            print(f"SchemaValidationError: orders.csv line {line}: {detail}", file=sys.stderr)
            sys.exit(2)
print("all rows valid")
