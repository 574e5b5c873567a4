#!/usr/bin/env python3
"""The chat page in a real browser: headless Chromium driven by Selenium.

Two browser pages and one nc client chat in a room; a whisper goes from a
browser to nc and back; a line that looks like HTML shows as text; the live
view lists the three clients' threads. Saves a screenshot of the page to
docs/web.png.

    python3 tests/browser/chat_page.py target/debug/threadchat

Needs Debian's chromium, chromium-driver, python3-selenium and nc
(.ci/run installs them). Outside CI it skips, with a message, when one is
missing; with CI set, a missing one is a failure. Every wait has a deadline
and fails saying what it expected and what it saw.
"""

import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

DEADLINE = 20  # seconds for any one expectation; a passing run never waits this long
XSS = "<img src=x onerror=alert(1)>"


def skip_or_fail(why):
    if os.environ.get("CI"):
        sys.exit(f"FAILED: {why} (CI installs it: see .ci/run)")
    print(f"SKIPPED: {why}")
    sys.exit(0)


def lines_of(stream, into):
    for raw in iter(stream.readline, b""):
        into.put(raw.decode("utf-8", "replace").rstrip("\n"))


def wait_for(what, probe, deadline=DEADLINE):
    """Polls `probe` until it returns something true; fails with the last value."""
    end = time.monotonic() + deadline
    seen = None
    while time.monotonic() < end:
        seen = probe()
        if seen:
            return seen
        time.sleep(0.05)  # polling interval, not synchronisation
    raise AssertionError(f"timed out after {deadline} s waiting for {what}; last seen: {seen!r}")


class Nc:
    """A real nc, with its output read line by line on a thread."""

    def __init__(self, host, port):
        self.process = subprocess.Popen(
            ["nc", host, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=lines_of, args=(self.process.stdout, self.lines), daemon=True).start()

    def send(self, text):
        self.process.stdin.write((text + "\n").encode())
        self.process.stdin.flush()

    def expect(self, wanted):
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if line == wanted:
                return
        raise AssertionError(f"nc: expected {wanted!r}; got {self.seen!r}")

    def close(self):
        self.process.kill()


def start_server(binary, web_port=0):
    server = subprocess.Popen(
        [binary, "--addr", "127.0.0.1:0", "--http", f"127.0.0.1:{web_port}", "--irc", "off"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "RUST_LOG": "info"},
    )
    log = queue.Queue()
    threading.Thread(target=lines_of, args=(server.stderr, log), daemon=True).start()
    chat = web = None
    end = time.monotonic() + DEADLINE
    while (chat is None or web is None) and time.monotonic() < end:
        try:
            line = log.get(timeout=1)
        except queue.Empty:
            continue
        if m := re.search(r"listening on (\S+)", line):
            chat = m.group(1)
        if m := re.search(r"web page at (http://\S+)", line):
            web = m.group(1)
    if chat is None or web is None:
        server.kill()
        raise AssertionError("the server did not say where it listens")
    return server, chat, web


def browser(user_data):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--window-size=1200,800",
        f"--user-data-dir={user_data}",
    ]:
        options.add_argument(flag)
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(service=service, options=options)


def log_text(page):
    return page.find_element("id", "log").text


def sign_in(page, url, name):
    page.get(url)
    wait_for(f"{name}'s name dialog", lambda: page.find_element("id", "naming").is_displayed())
    field = page.find_element("id", "name")
    field.send_keys(name)
    page.find_element("css selector", "#name-form button").click()
    wait_for(f"{name}'s welcome", lambda: f"* welcome {name}!" in log_text(page) and log_text(page))


def say(page, text):
    field = page.find_element("id", "line")
    field.send_keys(text)
    page.find_element("css selector", "#say button").click()


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/debug/threadchat"
    for tool in ["chromium", "chromedriver", "nc"]:
        if shutil.which(tool) is None:
            skip_or_fail(f"no {tool} on this machine")
    try:
        import selenium  # noqa: F401
    except ImportError:
        skip_or_fail("no selenium for this python3 (apt-get install python3-selenium)")

    server, chat, web = start_server(binary)
    host, port = chat.rsplit(":", 1)
    profiles = [tempfile.mkdtemp(prefix="threadchat-chrome-") for _ in range(2)]
    pages = []
    nc = None
    try:
        alice, bob = (browser(p) for p in profiles)
        pages = [alice, bob]
        sign_in(alice, web, "alice")
        sign_in(bob, web, "bob")
        nc = Nc(host, port)
        nc.expect("* choose a name (1-24 letters, digits, - or _):")
        nc.send("carol")
        nc.expect("* welcome carol! you are in lobby; 3 online. /help lists the commands")

        # Chat: a browser to everyone, nc to everyone.
        say(alice, "hello from a browser")
        wait_for("bob to see alice", lambda: "[lobby] alice: hello from a browser" in log_text(bob))
        nc.expect("[lobby] alice: hello from a browser")
        nc.send("hello from nc")
        wait_for("alice to see carol", lambda: "[lobby] carol: hello from nc" in log_text(alice))

        # A whisper from a browser to nc, and back.
        say(bob, "/w carol psst from bob")
        nc.expect("[dm from bob] psst from bob")
        nc.send("/w bob psst back")
        wait_for("bob to get carol's whisper", lambda: "[dm from carol] psst back" in log_text(bob))

        # A line that looks like HTML appears as the text it is.
        nc.send(XSS)
        for page in pages:
            wait_for("the HTML-looking line, literally", lambda: f"[lobby] carol: {XSS}" in log_text(page))
            assert page.find_elements("css selector", "#log img") == [], "an <img> was created from chat text"

        # The live view: three clients, so three readers and three writers.
        def threads_table():
            text = alice.find_element("id", "threads").text
            return text if ("reader 3" in text and "writer 3" in text) else None
        wait_for("the live view listing 3 readers and 3 writers", threads_table)
        wait_for("rooms in the side bar", lambda: "lobby (3)" in alice.find_element("id", "rooms").text)
        wait_for("who is here", lambda: "carol" in alice.find_element("id", "who").text)
        wait_for("the chart drawn", lambda: alice.execute_script(
            "return document.getElementById('chart').getContext('2d').getImageData(0,0,300,90).data.some(v => v !== 0)"))

        os.makedirs("docs", exist_ok=True)
        alice.save_screenshot("docs/web.png")

        # The server goes away: the page says so, and comes back by itself
        # (with the same name) once a server answers on the same address.
        server.terminate()
        server.wait(timeout=DEADLINE)
        status = lambda: alice.find_element("id", "status").text
        wait_for("the page to say it is disconnected", lambda: "disconnected" in status() and status())
        web_port = int(web.rstrip("/").rsplit(":", 1)[1])
        server, chat, web = start_server(binary, web_port)
        wait_for("the page to reconnect as alice", lambda: status() == "connected as alice" and status(), deadline=2 * DEADLINE)
        print("browser test: 5 checks passed, 0 failed; screenshot in docs/web.png")
    finally:
        for page in pages:
            page.quit()
        if nc is not None:
            nc.close()
        server.terminate()
        server.wait(timeout=DEADLINE)
        for profile in profiles:
            shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
