"""Answers to the toy's ``col_sum`` for the tests of similar-answer flagging: one written out
by hand and a copy of it with every variable renamed, a comment and a blank line added, and
independent answers of other styles."""

ORIGINAL = '''def col_sum(x):
    totals = []
    for j in range(x.shape[1]):
        acc = 0.0
        for i in range(x.shape[0]):
            acc += x[i, j]
        totals.append(acc)
    return np.array(totals)
'''
COPY = '''def col_sum(m):
    # my own work
    out = []
    for c in range(m.shape[1]):
        s = 0.0
        for r in range(m.shape[0]):
            s += m[r, c]
        out.append(s)

    return np.array(out)
'''
OTHERS = [
    "def col_sum(x):\n    return np.asarray(x).sum(axis=0)\n",
    'def col_sum(x):\n    return np.einsum("ij->j", x)\n',
    "def col_sum(x):\n    result = np.zeros(x.shape[1])\n    for r in x:\n"
    "        result = result + r\n    return result\n",
    "def col_sum(x):\n    return np.array([sum(c) for c in x.T])\n",
]
STUB = "def col_sum(x):\n    raise NotImplementedError()\n"
