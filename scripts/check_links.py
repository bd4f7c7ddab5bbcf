#!/usr/bin/env python3
"""Checks every internal link and image of the documentation: the rendered book (each relative
link's or image's file exists inside the book, and a link's anchor is an id of that page) and README.md (each relative link's
file exists in the repository, and its anchor is a heading of that Markdown file, in GitHub's slug
form). Prints each broken link and exits 1 if there is one.

usage: check_links.py BOOK_HTML_DIR README.md
"""
import html.parser
import os
import re
import sys
from urllib.parse import unquote, urlparse


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("href") is not None:
            self.links.append(a["href"])
        if tag == "img" and a.get("src") is not None:
            self.links.append(a["src"])


def external(href):
    return bool(urlparse(href).scheme) or href.startswith("//") or href.startswith("mailto:")


def check_book(root):
    pages = {}
    for d, _, files in os.walk(root):
        for f in files:
            if f.endswith(".html"):
                p = Page()
                p.feed(open(os.path.join(d, f), encoding="utf-8").read())
                pages[os.path.normpath(os.path.join(d, f))] = p
    broken = []
    for path, page in sorted(pages.items()):
        # print.html and the 404 page repeat every page's links with other bases.
        if os.path.basename(path) in ("print.html", "404.html"):
            continue
        for href in page.links:
            if external(href):
                continue
            target, _, anchor = href.partition("#")
            file = os.path.normpath(os.path.join(os.path.dirname(path), unquote(target))) if target else path
            if not file.startswith(os.path.normpath(root) + os.sep):
                broken.append(f"{os.path.relpath(path, root)}: {href}: leaves the book")
            elif file not in pages and not os.path.exists(file):
                broken.append(f"{os.path.relpath(path, root)}: {href}: no such page")
            elif anchor and file in pages and unquote(anchor) not in pages[file].ids:
                broken.append(f"{os.path.relpath(path, root)}: {href}: no such anchor")
    return broken


def github_slug(heading):
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def slugs(md_path):
    out, fence = set(), False
    for line in open(md_path, encoding="utf-8"):
        if line.startswith("```"):
            fence = not fence
        elif not fence and re.match(r"#{1,6} ", line):
            out.add(github_slug(line.lstrip("#")))
    return out


def check_markdown(md):
    broken = []
    text = open(md, encoding="utf-8").read()
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    for href in re.findall(r"\]\(([^)\s]+)\)", text):  # links and images
        if external(href):
            continue
        target, _, anchor = href.partition("#")
        file = os.path.normpath(os.path.join(os.path.dirname(md), target)) if target else md
        if not os.path.exists(file):
            broken.append(f"{md}: {href}: no such file")
        elif anchor and file.endswith(".md") and anchor not in slugs(file):
            broken.append(f"{md}: {href}: no such heading")
    return broken


def main():
    book, readme = sys.argv[1], sys.argv[2]
    broken = check_book(book) + check_markdown(readme)
    for b in broken:
        print(b)
    print(f"{len(broken)} broken internal links", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
