"""Mid-stream fallback without repeated text: trimming what a continuation repeats.

When a deployment fails after the client has received text T, the next deployment is asked to
continue T (``ProviderRequest.continue_from = T``) rather than start again, so the client never
sees a second, different beginning. Models asked to continue often restart a little before the
end of T (the last sentence, or the last few words), so the continuation's first text repeats a
suffix of T. :class:`OverlapTrimmer` removes that repeat:

1. Text is compared whitespace-normalised: a run of whitespace counts as one space; the
   continuation's leading whitespace and T's trailing whitespace are ignored.
2. The candidate overlaps are the suffixes of T's last 200 normalised characters that begin at
   a word start and are at least 8 characters long (or are all of T, when T is shorter): a
   shorter match is more likely chance ("a", "the ") than a restart.
3. The continuation's head is held back while it is still consistent with a candidate longer
   than what has arrived. Once no candidate can grow, the longest candidate that the head
   matches completely is the overlap: it is dropped (the continuation's own characters,
   whitespace included) and the rest is passed on unchanged. With no complete match nothing is
   dropped and the held text goes on as it came.
4. After that decision every text passes straight through. At most about 200 characters are
   held back, once, so the continuation reaches the client that much later at worst.
5. If the stream ends while text is held, the longest complete match is dropped; a head of 8 or
   more characters that only ever repeated T (the model repeated the end of T and stopped) is
   dropped whole.

Limits, by design: a repeat that starts more than 200 characters before the end of T is not
recognised (the window bounds both the holding back and the work per character), and a
continuation that genuinely begins by saying again the last 8 or more characters of T loses
them, which in prose is rare and far less jarring than a duplicated phrase.
"""

from __future__ import annotations

TAIL_WINDOW_CHARS = 200
MIN_OVERLAP_CHARS = 8


def normalise(text: str) -> tuple[str, list[int]]:
    """``text`` with each whitespace run as one space, and for each character of the result the
    index in ``text`` just past the characters it stands for."""
    out: list[str] = []
    ends: list[int] = []
    for index, char in enumerate(text):
        if char.isspace():
            if out and out[-1] == " ":
                ends[-1] = index + 1
                continue
            char = " "
        out.append(char)
        ends.append(index + 1)
    return "".join(out), ends


def _word_start(text: str, index: int) -> bool:
    char = text[index]
    if char == " ":
        return False
    return index == 0 or not (text[index - 1].isalnum() and char.isalnum())


class OverlapTrimmer:
    """Filters a continuation of ``sent_text``: :meth:`feed` each delta, then :meth:`finish`."""

    def __init__(
        self,
        sent_text: str,
        *,
        window_chars: int = TAIL_WINDOW_CHARS,
        min_overlap_chars: int = MIN_OVERLAP_CHARS,
    ) -> None:
        normalised, _ = normalise(sent_text.strip())
        self._tail = normalised[-window_chars:] if window_chars > 0 else ""
        whole = len(normalised) <= window_chars
        self._min = min_overlap_chars
        self._starts = [
            index
            for index in range(len(self._tail))
            if _word_start(self._tail, index)
            and (len(self._tail) - index >= min_overlap_chars or (whole and index == 0))
        ]
        self._sent_ends_in_space = sent_text[-1:].isspace()
        self._held = ""
        self._decided = not self._starts
        self._strip_leading_space = False

    def feed(self, text: str) -> str:
        """The part of ``text`` (and of what was held) that may go to the client now."""
        if self._decided:
            return self._pass(text)
        self._held += text
        return self._decide(final=False)

    def finish(self) -> str:
        """At the end of the continuation: whatever is still held, less a repeat."""
        if self._decided:
            return ""
        return self._decide(final=True)

    def _decide(self, final: bool) -> str:
        stripped = self._held.lstrip()
        lead = len(self._held) - len(stripped)
        head, ends = normalise(stripped)
        alive = [index for index in self._starts if self._consistent(index, head)]
        growing = [index for index in alive if len(self._tail) - index > len(head)]
        if growing and not final:
            return ""
        complete = [index for index in alive if len(self._tail) - index <= len(head)]
        if complete:
            overlap = len(self._tail) - min(complete)
            cut = lead + ends[overlap - 1]
        elif growing and len(head) >= self._min:
            cut = len(self._held)
        else:
            cut = 0
        rest, self._held, self._decided = self._held[cut:], "", True
        if cut:
            self._strip_leading_space = self._sent_ends_in_space
            return self._pass(rest)
        return rest

    def _consistent(self, index: int, head: str) -> bool:
        """Does ``head`` agree with the candidate suffix starting at ``index`` as far as both go?"""
        n = min(len(self._tail) - index, len(head))
        return self._tail[index : index + n] == head[:n]

    def _pass(self, text: str) -> str:
        if self._strip_leading_space:
            text = text.lstrip()
            self._strip_leading_space = not text
        return text
