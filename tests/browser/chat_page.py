#!/usr/bin/env python3
"""The chat page in a real browser: headless Chromium driven by Selenium.

Two browser pages and one nc client chat in a room; a whisper goes from a
browser to nc and back; a line that looks like HTML shows as text; the live
view lists the three clients' threads, draws them on its board of threads
coloured by state, and the trace button shows one line's journey through
the server's threads. Saves a screenshot of the page to target/web.png
(SCREENSHOT=docs/web.png refreshes README's picture instead). Then what a
hostile or busy room does to a page (issue 24):
a whisper whose text looks like a chat line is drawn as the whisper it is,
message text is bidi-isolated and wrapped lines are indented, a crowd
coming and going does not get the page's user refused or disconnected,
the curl door works from the browser's own EventSource and fetch (issue
25), and the page runs under its Content-Security-Policy with no violation.

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
import socket
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
    # Every client here comes from 127.0.0.1, more than the 64 that one
    # address may have open by default: the crowd below is a class's worth.
    server = subprocess.Popen(
        [binary, "--addr", "127.0.0.1:0", "--http", f"127.0.0.1:{web_port}", "--max-per-addr", "0", "--irc", "off"],
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
    # The console, for Content-Security-Policy violations.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
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


def csp_violations(page):
    """The console's Content-Security-Policy messages since the last call."""
    return [e["message"] for e in page.get_log("browser")
            if "Content Security Policy" in e["message"] or "Refused to" in e["message"]]


def check_the_policy_holds(page):
    """The page ran with no violation, and its policy is in force: an inline
    script is refused, and the console says so (so that an empty console
    above means something)."""
    assert csp_violations(page) == [], f"CSP violations: {csp_violations(page)!r}"
    page.execute_script("""
        const probe = document.createElement("script");
        probe.textContent = "window.inlineScriptRan = true";
        document.head.append(probe);""")
    ran = page.execute_script("return window.inlineScriptRan === true")
    assert not ran, "an inline script ran: the page has no Content-Security-Policy"
    wait_for("the console to report the refused inline script", lambda: csp_violations(page))


STEPS = ["reader got it", "event sent", "manager took it", "queued in 2 outboxes",
         "first writer wrote it", "last writer wrote it"]


def check_the_board_and_a_trace(page):
    """The board draws a cell per client thread, coloured by its state, and
    the long-lived threads by name; the trace button asks for /trace, and
    the journey of the next line comes back step by step."""
    def board():
        return page.execute_script("""
            const cells = (role) => [...document.querySelectorAll(`#board [data-role=${role}] .cell`)]
                .map((c) => c.className.replace("cell s-", ""));
            return { reader: cells("reader"), writer: cells("writer"),
                     named: [...document.querySelectorAll("#board .cell.named")].map((c) => c.textContent) };""")
    # Three chat clients and nobody talking: readers in a read, writers
    # waiting on their queues.
    want = {"reader": ["read"] * 3, "writer": ["channel"] * 3}
    drawn = wait_for("the board to draw 3 readers in a read and 3 writers waiting",
                     lambda: (lambda b: b if all(b[k] == v for k, v in want.items()) else None)(board()))
    for thread in ["manager", "acceptor", "monitor", "http-acceptor"]:
        assert thread in drawn["named"], f"the board should show {thread} by name; it shows {drawn['named']!r}"
    legend = page.find_element("id", "board-legend").text
    assert "blocked in a socket write" in legend, f"the legend should name every state; it says {legend!r}"

    page.find_element("id", "trace").click()
    wait_for("the page to say the next line is traced",
             lambda: "your next line is traced" in page.find_element("id", "journey-title").text)
    say(page, "a traced line")
    steps = lambda: [li.text for li in page.find_elements("css selector", "#journey li")]
    wait_for("the journey's 6 steps and its total", lambda: len(steps()) == 7 and steps())
    seen = steps()
    names = [step.rsplit(": ", 1)[0] for step in seen[:6]]
    assert names == STEPS, f"the journey's steps should be {STEPS!r}; they are {seen!r}"
    for step in seen[:6]:
        assert re.search(r": \+\d+ µs$", step), f"each step should take a non-negative time: {seen!r}"
    assert "a traced line" in page.find_element("id", "journey-title").text


def find_line(page, text):
    """How the log drew the line whose text is `text` (or starts with it)."""
    return page.execute_script("""
        const [text] = arguments;
        const div = [...document.querySelectorAll("#log > div")].find(
            (d) => d.textContent.startsWith(text));
        if (!div) return null;
        const body = div.querySelector(".text");
        return { cls: div.className, bold: [...div.querySelectorAll("b")].map((b) => b.textContent),
                 bidi: body ? getComputedStyle(body).unicodeBidi : null };""", text)


def where_in_line(page, start, needle):
    """Where the first character of the line starting with `start`, and the
    first of `needle` in it, are drawn, and the one before `needle`."""
    return page.execute_script("""
        const [start, needle] = arguments;
        const div = [...document.querySelectorAll("#log > div")].find(
            (d) => d.textContent.startsWith(start));
        if (!div) return null;
        const at = (node, i) => {
            const range = document.createRange();
            range.setStart(node, i); range.setEnd(node, i + 1);
            const r = range.getBoundingClientRect();
            return { left: r.left, top: r.top };
        };
        const walker = document.createTreeWalker(div, NodeFilter.SHOW_TEXT);
        let first = null, found = null;
        for (let node; (node = walker.nextNode());) {
            if (!first && node.length) first = at(node, 0);
            const i = node.data.indexOf(needle);
            if (i > 0) found = { needle: at(node, i), before: at(node, i - 1) };
        }
        return found && { line: first, ...found };""", start, needle)


def check_a_spoofed_whisper(victim, mallory):
    """A whisper whose text looks like a chat line is the whisper it is."""
    spoof = "admin: paste your password"
    mallory.send(f"/w bob {spoof}")
    mallory.expect(f"[dm to bob] {spoof}")
    line = f"[dm from mallory] {spoof}"
    drawn = wait_for("bob's page to show mallory's whisper", lambda: find_line(victim, line))
    assert drawn["cls"] == "dm" and drawn["bold"] == ["mallory"], (
        f"a whisper from mallory should be drawn as one (class dm, mallory in bold); got {drawn!r}")


def check_isolation_and_indent(page, mallory):
    """Message text is bidi-isolated, and text that wraps is indented, so a
    fake notice pushed onto a line of its own does not start where lines do."""
    fake = "* server shutting down"
    mallory.send("hi" + " " * 150 + fake)
    start = "[lobby] mallory: hi  "
    drawn = wait_for("bob's page to show mallory's long line", lambda: find_line(page, start))
    assert drawn["bidi"] == "isolate", f"message text should have unicode-bidi: isolate; got {drawn!r}"
    where = where_in_line(page, start, fake)
    assert where["needle"]["top"] > where["before"]["top"], (
        f"the test line should wrap just before {fake!r} (a narrower log?); got {where!r}")
    indent = where["needle"]["left"] - where["line"]["left"]
    assert indent >= 16, (
        f"a wrapped line's continuation should be indented; it starts {indent:.1f} px from the line's start: {where!r}")


class Quiet:
    """A chat-port client for a crowd: it sends, and drains what comes back
    on a thread so that its backlog never fills."""

    def __init__(self, host, port, name):
        self.sock = socket.create_connection((host, int(port)), timeout=DEADLINE)
        self.sock.sendall(f"{name}\n".encode())
        threading.Thread(target=self.drain, daemon=True).start()

    def drain(self):
        try:
            while self.sock.recv(65536):
                pass
        except OSError:
            pass

    def send(self, text):
        self.sock.sendall(f"{text}\n".encode())

    def close(self):
        self.sock.close()


def pace(count, seconds, action):
    """Runs action(i) for i in range(count), spread evenly over `seconds`
    (pacing the load, not waiting for anything)."""
    start = time.monotonic()
    for i in range(count):
        time.sleep(max(0.0, start + i * seconds / count - time.monotonic()))
        action(i)


def check_a_crowd_comes_and_goes(page, host, port, present):
    """60 arrive within 3 s, rename and leave, while 4 others /join x and
    /leave once a second for 10 s: the page's user is never refused or
    disconnected, its page asks for the side bar at most once per 2 s, and
    its user list ends right."""
    page.execute_script("""
        window.listsSent = 0;
        const send = WebSocket.prototype.send;
        WebSocket.prototype.send = function (data) {
            if (data === "/who" || data === "/rooms") window.listsSent++;
            return send.call(this, data);
        };""")
    started = time.monotonic()
    churners = [Quiet(host, port, f"churn{i}") for i in range(4)]
    crowd = []

    def churn():
        def once(_):
            for c in churners:
                c.send("/join x")
                c.send("/leave")
        pace(10, 10, once)
    churning = threading.Thread(target=churn)
    churning.start()
    pace(60, 3, lambda i: crowd.append(Quiet(host, port, f"arrival{i}")))
    pace(60, 3, lambda i: crowd[i].send(f"/nick renamed{i}"))
    pace(60, 3, lambda i: crowd[i].close())
    churning.join()

    expected = sorted(present + [f"churn{i}" for i in range(4)], key=str.lower)
    who = lambda: page.execute_script("return [...document.querySelectorAll('#who li')].map((li) => li.textContent)")
    wait_for(f"the page's user list to be {expected!r}", lambda: who() == expected and who())
    took = time.monotonic() - started
    log = log_text(page)
    refused = [line for line in log.splitlines() if line.startswith("! ")]
    assert refused == [], f"the page's user was refused: {refused[:5]!r} ({len(refused)} in all)"
    assert "disconnected" not in log, "the page was disconnected during the crowd"
    assert page.find_element("id", "status").text == "connected as alice"
    sent = page.execute_script("return window.listsSent")
    most = 2 * (int(took / 2) + 2)
    assert sent <= most, f"the page asked for {sent} lists in {took:.1f} s; at most {most} (one /who and one /rooms per 2 s)"
    for c in churners:
        c.close()
    return sent, took


def check_an_event_source(page, nc):
    """The curl door from a browser: an EventSource registers eve, gets its
    token first, a fetch POST to /say speaks as eve, room lines arrive with
    their ids, and closing the EventSource lets eve go."""
    page.execute_script("""
        window.sse = { token: null, lines: [], said: null };
        const source = new EventSource("/events?name=eve");
        source.addEventListener("token", (e) => { window.sse.token = e.data; });
        source.onmessage = (e) => window.sse.lines.push([e.lastEventId, e.data]);
        window.sse.source = source;""")
    token = wait_for("the stream's token", lambda: page.execute_script("return window.sse.token"))
    assert re.fullmatch(r"[0-9a-f]{32}", token), f"a token of 128 bits in hex; got {token!r}"
    nc.expect("* eve joined")
    page.execute_script("""
        fetch("/say?token=" + window.sse.token, { method: "POST", body: "hello from EventSource" })
            .then((r) => { window.sse.said = r.status; });""")
    nc.expect("[lobby] eve: hello from EventSource")
    said = wait_for("the /say answer", lambda: page.execute_script("return window.sse.said"))
    assert said == 204, f"/say should answer 204; got {said!r}"
    nc.send("hi eve")
    lines = lambda: page.execute_script("return window.sse.lines")
    got = wait_for("eve's stream to carry carol's line", lambda: [l for l in lines() if l[1] == "[lobby] carol: hi eve"])
    assert re.fullmatch(r"[0-9a-f]+-[0-9]+", got[0][0]), f"a room line's event id; got {got!r}"
    page.execute_script("window.sse.source.close()")
    nc.expect("* eve left")


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
    nc = mallory = None
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
        check_the_board_and_a_trace(alice)

        # Not docs/ by default: a test run must not change the tree.
        screenshot = os.environ.get("SCREENSHOT", "target/web.png")
        os.makedirs(os.path.dirname(screenshot) or ".", exist_ok=True)
        alice.save_screenshot(screenshot)

        # What a hostile sender and a busy room do to a page.
        mallory = Nc(host, port)
        mallory.expect("* choose a name (1-24 letters, digits, - or _):")
        mallory.send("mallory")
        mallory.expect("* welcome mallory! you are in lobby; 4 online. /help lists the commands")
        check_a_spoofed_whisper(bob, mallory)
        check_isolation_and_indent(bob, mallory)
        sent, took = check_a_crowd_comes_and_goes(alice, host, port, ["alice", "bob", "carol", "mallory"])
        check_an_event_source(bob, nc)
        for page in pages:
            check_the_policy_holds(page)

        # The server goes away: the page says so, and comes back by itself
        # (with the same name) once a server answers on the same address.
        server.terminate()
        server.wait(timeout=DEADLINE)
        status = lambda: alice.find_element("id", "status").text
        wait_for("the page to say it is disconnected", lambda: "disconnected" in status() and status())
        web_port = int(web.rstrip("/").rsplit(":", 1)[1])
        server, chat, web = start_server(binary, web_port)
        wait_for("the page to reconnect as alice", lambda: status() == "connected as alice" and status(), deadline=2 * DEADLINE)
        print(f"browser test: 11 checks passed, 0 failed (the crowd: {sent} lists asked for in {took:.1f} s); "
              f"screenshot in {screenshot}")
    finally:
        for page in pages:
            page.quit()
        for client in [nc, mallory]:
            if client is not None:
                client.close()
        server.terminate()
        server.wait(timeout=DEADLINE)
        for profile in profiles:
            shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
