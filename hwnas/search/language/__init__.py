"""Word-level language modelling: PTB-layout corpora, the recurrent language model around
a searched cell, and its training recipe (AWD-LSTM / DARTS-RNN).

The search engine reaches it through registered components: the ``ptb`` dataset
(:mod:`hwnas.search.datasets.text`), the ``rnn_cell`` space, the ``rnn_supernet``
weights manager and the ``language`` objective (perplexity; its ``final`` section is the
training recipe :func:`hwnas.search.language.train.train_lm` follows).
"""
from __future__ import annotations
