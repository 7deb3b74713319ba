"""Grammars shared by the adapter tests (small, bounded, so a constrained
row must end within a few dozen tokens)."""

RECORD = r"""
root ::= "{\"name\": \"" [A-Z] [a-z]{1,8} "\", \"age\": " [1-9] [0-9]? "}"
"""
RECORD_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Z][a-z]{1,8}$"},
        "age": {"type": "integer", "minimum": 1, "maximum": 99},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}
ARITH = r"""
root ::= expr
expr ::= term ( " "? [-+*/] " "? term ){0,2}
term ::= [0-9]{1,3} | "(" [0-9]{1,2} [-+*] [0-9]{1,2} ")"
"""
EMAIL = r"[a-z]{2,8}@example\.(com|org|net)"
