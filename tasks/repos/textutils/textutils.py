"""Small text helpers."""


def word_count(text):
    """Number of whitespace-separated words in `text`."""
    return len(text.split())


def capitalize_words(text):
    """Each word with its first letter upper-cased."""
    return " ".join(word[:1].upper() + word[1:] for word in text.split())
