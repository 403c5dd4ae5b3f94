"""What makes a result trustworthy, value by value: how sure the model was, and where the value
stands in the input text.

    shape.py       the schema mirrored with one slot per leaf value (both trust columns use it)
    spans.py       a JSON answer parsed with the character span of every value
    confidence.py  token log-probabilities -> each value's probability, enum/boolean margins
    grounding.py   each string, number and date value found in the row's input text, with
                   the fuzzy search; it reads the text through:
      folding.py     Unicode folding with the map back to the original offsets
      numerals.py    the number tokens written in a text and every value each can be read as
      dates.py       the dates (ISO, numeric, month names) and clock times written in a text
    assess.py      the runner's entry: both for one answer; `run.require_grounding`'s check
    columns.py     the trust columns of the output table (`_confidence`, `_grounding`, ...)
"""
