"""Embed nslang in a Python application, with a custom Python tool.

Run: python examples/embed.py
It registers a tool written in Python, loads a NeuroScript procedure that calls it, passes Python
values in and gets Python values back, and shows how a script error reaches the host.
"""

from __future__ import annotations

import io
import tempfile

from nslang import Interpreter, NSRuntimeError, tool


@tool("shop", "Price")
def price(item: str, quantity: int = 1) -> float:
    """Price of an item from the host application's catalogue, in USD.

    Args:
        item: catalogue name.
        quantity: how many.

    Returns:
        The total price in USD.
    """
    catalogue = {"apple": 0.5, "bread": 2.25, "cheese": 4.0}
    if item not in catalogue:
        raise KeyError(f"unknown item {item!r}")
    return catalogue[item] * quantity


SCRIPT = """
func invoice(needs items returns lines) means
  :: description: one line per item, and a total, priced by the host's tool.shop.Price
  set lines = []
  set total = 0
  for each entry in items
    set cost = tool.shop.Price(entry["item"], quantity: entry["qty"])
    set total = total + cost
    set lines[len(lines)] = entry["qty"] + " x " + entry["item"] + " = " + cost
  endfor
  set lines[len(lines)] = "total " + total + " " + currency
  return lines
endfunc
"""


def main() -> None:
    out = io.StringIO()
    with tempfile.TemporaryDirectory() as sandbox:
        interp = Interpreter(sandbox_dir=sandbox, stdout=out, timeout_s=5)
        interp.register_tool(price)
        interp.set_global("currency", "USD")
        interp.load(SCRIPT, name="invoice.ns")
        lines = interp.call("invoice", [{"item": "apple", "qty": 4}, {"item": "cheese", "qty": 1}])
        for line in lines:
            print(line)
        try:
            interp.call("invoice", [{"item": "caviar", "qty": 1}])
        except NSRuntimeError as e:
            print(f"script error {e.code}: {e.message}")


if __name__ == "__main__":
    main()
