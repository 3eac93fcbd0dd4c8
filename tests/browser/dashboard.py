"""The dashboard in a real browser: Chromium driven by Playwright against a running API.

    python3 tests/browser/dashboard.py --api http://127.0.0.1:18080 --screenshots DIR
    python3 tests/browser/dashboard.py --api http://127.0.0.1:18081 --operator-key KEY
    python3 tests/browser/dashboard.py --api URL [--operator-key KEY] --many 100000

Without --operator-key the API is expected to have keys off (tickwork-local's default): the
run creates jobs through the form, watches them fire against a target of its own, pauses,
resumes, triggers, requeues a dead letter and reaches a failing job's last answer from the
overview in two clicks. With --operator-key it checks what keys may see and do: a viewer's
key sees and cannot change (no buttons, and the API refuses), a tenant's key sees only its
tenant's jobs. With --many N it inserts N inactive jobs through the API and checks that the
jobs list pages, sorts and searches them a page at a time. Every page is checked with
axe-core (vendored) for serious violations.
"""

import argparse
import http.client
import http.server
import json
import os
import sys
import threading
import time
import urllib.parse
import urllib.request

from playwright.sync_api import expect, sync_playwright

HERE = os.path.dirname(os.path.abspath(__file__))
AXE = os.path.join(HERE, "vendor", "axe.min.js")


class Target(http.server.BaseHTTPRequestHandler):
    """A job target: /fail answers 500 with a body to read back, anything else 200."""

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        failing = self.path.startswith("/fail")
        body = b"boom: the target refused this fire" if failing else b"ok"
        self.send_response(500 if failing else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, *args):
        pass


def start_target():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def call(api, method, path, key=None, body=None):
    """One API request; returns (status, JSON body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(api + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


def accessible(page, name):
    """axe-core over the page: no serious or critical violations."""
    page.add_script_tag(path=AXE)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, f"{name}: " + json.dumps(
        [{"id": v["id"], "help": v["help"], "nodes": [n["html"] for n in v["nodes"][:3]]} for v in bad],
        indent=1,
    )


def shot(page, directory, name):
    if directory:
        os.makedirs(directory, exist_ok=True)
        page.screenshot(path=os.path.join(directory, f"{name}.png"), full_page=True)


def wait_for(predicate, what, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def without_keys(browser, api, screenshots):
    target = start_target()
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{api}/ui")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    accessible(page, "overview (empty)")

    # A bad expression: the API's 422 beside the field, and nothing stored.
    page.goto(f"{api}/ui/#/new")
    page.locator("#f-name").fill("nightly report")
    page.locator("#f-cronExpression").fill("61 * * * * *")
    page.locator("#f-httpUrl").fill(f"{target}/ok")
    expect(page.locator("#request-json")).to_contain_text('"cronExpression": "61 * * * * *"')
    page.get_by_role("button", name="Create job").click()
    expect(page.locator("#e-cronExpression")).to_contain_text("cronExpression")
    expect(page.locator("#f-cronExpression")).to_have_attribute("aria-invalid", "true")
    status, listed = call(api, "GET", "/api/v1/jobs")
    assert status == 200 and listed["jobs"] == [], listed
    accessible(page, "new job with an error")
    shot(page, screenshots, "job-form-error")

    # A good one, previewed as it is typed, then created: its page, then the list.
    page.locator("#f-cronExpression").fill("*/2 * * * * *")
    expect(page.get_by_text("every 2 seconds")).to_be_visible()
    page.get_by_role("button", name="Create job").click()
    expect(page.get_by_role("heading", name="nightly report")).to_be_visible()
    job_url = page.url
    page.goto(f"{api}/ui/#/jobs")
    expect(page.get_by_role("link", name="nightly report")).to_be_visible()
    expect(page.get_by_text("every 2 seconds")).to_be_visible()
    accessible(page, "jobs")

    # Its history fills as it fires.
    page.goto(job_url)
    def fired_twice():
        page.reload()
        expect(page.get_by_role("heading", name="History")).to_be_visible()
        return page.locator("td .status-SUCCEEDED").count() >= 2

    wait_for(fired_twice, "two successful fires in the job's history")
    accessible(page, "job")
    shot(page, screenshots, "job")

    # Pause and resume; trigger.
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_text("Paused:")).to_be_visible()
    expect(page.locator("h1 .status-paused")).to_be_visible()
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("h1 .status-active")).to_be_visible()
    page.get_by_role("button", name="Trigger now").click()
    expect(page.get_by_text("Queued a manual fire")).to_be_visible()

    # A failing job ends in the dead letters; from the overview, its last answer is two
    # clicks away: the job's link, then its history shows status and answer.
    status, failing = call(api, "POST", "/api/v1/jobs", body={
        "name": "flaky webhook", "cronExpression": "*/2 * * * * *",
        "httpUrl": f"{target}/fail", "maxRetries": 0,
    })
    assert status == 201, failing
    wait_for(lambda: call(api, "GET", "/api/v1/dead-letters")[1]["executions"], "a dead letter")
    # The workers write their rollups every few seconds: the overview's charts and its
    # "failing now" list read them.
    wait_for(lambda: call(api, "GET", "/api/v1/jobs?status=FAILED")[1]["jobs"], "a job whose latest fire failed")
    wait_for(lambda: call(api, "GET", "/api/v1/activity")[1]["totals"]["failed"] >= 1, "a failure in the rollups")
    page.goto(f"{api}/ui/#/")
    expect(page.get_by_role("heading", name="Jobs failing now")).to_be_visible()
    expect(page.locator("figure.chart svg rect.c-ok").first).to_be_attached()
    expect(page.locator("figure.chart svg rect.c-bad").first).to_be_attached()
    accessible(page, "overview")
    shot(page, screenshots, "overview")
    page.get_by_role("link", name="last day").click()
    expect(page.locator("h2 strong", has_text="last day")).to_be_visible()
    accessible(page, "overview (last day)")
    page.goto(f"{api}/ui/#/")
    page.locator("ul.failing").get_by_role("link", name="flaky webhook").click()
    expect(page.get_by_role("heading", name="flaky webhook")).to_be_visible()
    expect(page.locator("td", has_text="500").first).to_be_visible()
    expect(page.get_by_text("boom: the target refused this fire").first).to_be_visible()
    call(api, "POST", f"/api/v1/jobs/{failing['id']}/pause")

    # The list: runs as a strip, and a search that asks the API.
    page.goto(f"{api}/ui/#/jobs")
    expect(page.locator("tr", has_text="nightly report").locator(".strip .s-SUCCEEDED").first).to_be_visible()
    shot(page, screenshots, "jobs")
    page.locator("#search").fill("FLAKY")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name="flaky webhook")).to_be_visible()
    expect(page.get_by_role("link", name="nightly report")).to_have_count(0)
    assert "q=FLAKY" in page.url, page.url
    page.locator("#search").fill("")
    page.locator("#last-status").select_option("FAILED")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name="flaky webhook")).to_be_visible()
    expect(page.get_by_role("link", name="nightly report")).to_have_count(0)
    page.locator("#last-status").select_option("")
    page.locator("#active").select_option("false")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name="flaky webhook")).to_be_visible()
    expect(page.get_by_role("link", name="nightly report")).to_have_count(0)
    page.locator("#active").select_option("")
    page.locator("#sort").select_option("name")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("tbody tr").first).to_contain_text("flaky webhook")

    # Requeue a dead letter from its list.
    page.goto(f"{api}/ui/#/dead-letters")
    expect(page.get_by_role("heading", name="Dead letters")).to_be_visible()
    accessible(page, "dead letters")
    shot(page, screenshots, "dead-letters")
    page.get_by_role("checkbox").first.check()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Requeue selected").click()
    expect(page.get_by_text(": queued")).to_be_visible()

    # Edit: a change shows the request it sends.
    page.goto(job_url + "/edit")
    page.locator("#f-maxRetries").fill("5")
    expect(page.locator("#request-json")).to_contain_text('"maxRetries": 5')
    accessible(page, "edit job")
    shot(page, screenshots, "job-edit")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("dl.settings dt:text-is('Retries') + dd")).to_have_text("5")

    page.goto(f"{api}/ui/#/keys")
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    accessible(page, "API keys")
    shot(page, screenshots, "keys")

    # Phone width: the jobs list still reads.
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{api}/ui/#/jobs")
    expect(page.get_by_role("link", name="nightly report")).to_be_visible()
    shot(page, screenshots, "jobs-phone")
    assert not errors, errors
    context.close()


def with_keys(browser, api, operator, screenshots):
    target = start_target()

    def key(tenant, role):
        status, made = call(api, "POST", "/api/v1/api-keys", operator,
                            {"name": f"{tenant} {role}", "tenant": tenant, "role": role})
        assert status == 201, made
        return made["key"]

    acme_editor, acme_viewer, other = key("acme", "editor"), key("acme", "viewer"), key("other", "editor")
    status, job = call(api, "POST", "/api/v1/jobs", acme_editor,
                       {"name": "acme billing", "cronExpression": "0 0 3 * * *", "httpUrl": f"{target}/ok"})
    assert status == 201, job
    status, hidden = call(api, "POST", "/api/v1/jobs", other,
                          {"name": "other tenant's job", "cronExpression": "0 0 3 * * *", "httpUrl": f"{target}/ok"})
    assert status == 201, hidden

    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.goto(f"{api}/ui/#/jobs")
    expect(page.get_by_role("heading", name="Sign in with an API key")).to_be_visible()
    accessible(page, "sign in")
    shot(page, screenshots, "sign-in")
    page.locator("#api-key").fill(acme_viewer)
    page.get_by_role("button", name="Use this key").click()
    expect(page.get_by_text("acme · viewer")).to_be_visible()

    # It sees its tenant's job and not the other's; no button that changes anything.
    expect(page.get_by_role("link", name="acme billing")).to_be_visible()
    expect(page.get_by_text("other tenant's job")).to_have_count(0)
    expect(page.get_by_role("link", name="New job")).to_have_count(0)
    page.get_by_role("link", name="acme billing").click()
    expect(page.get_by_role("heading", name="acme billing")).to_be_visible()
    for label in ("Pause", "Trigger now", "Delete", "Edit", "Rotate signing secret"):
        expect(page.get_by_role("button", name=label)).to_have_count(0)
        expect(page.get_by_role("link", name=label)).to_have_count(0)
    # The API refuses it too, whatever the page shows.
    refused = page.evaluate("""async (id) => {
        const response = await fetch(`/api/v1/jobs/${id}/pause`, {method: "POST",
            headers: {Authorization: `Bearer ${sessionStorage.getItem("tickwork.apiKey")}`}});
        return [response.status, (await response.json()).error.code];
    }""", job["id"])
    assert refused == [403, "forbidden"], refused

    # A tenant's editor key: sees only its own jobs, and has the buttons.
    page.get_by_role("button", name="Sign out").click()
    page.locator("#api-key").fill(other)
    page.get_by_role("button", name="Use this key").click()
    page.goto(f"{api}/ui/#/jobs")
    expect(page.get_by_role("link", name="other tenant's job")).to_be_visible()
    expect(page.get_by_text("acme billing")).to_have_count(0)
    expect(page.get_by_role("link", name="New job")).to_be_visible()

    # The operator makes a key through the page (shown once), sees it listed, revokes it.
    page.get_by_role("button", name="Sign out").click()
    page.locator("#api-key").fill(operator)
    page.get_by_role("button", name="Use this key").click()
    expect(page.get_by_text("default · editor · operator")).to_be_visible()
    page.goto(f"{api}/ui/#/keys")
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    form = page.locator("main form")
    form.get_by_label("Name", exact=True).fill("made in the browser")
    form.get_by_label("Tenant", exact=True).fill("acme")
    form.locator("select[name=role]").select_option("viewer")
    form.get_by_role("button", name="Make key").click()
    made = page.locator("#new-key").inner_text().strip()
    assert made.startswith("tw_"), made
    status, me = call(api, "GET", "/api/v1/me", made)
    assert status == 200 and me["role"] == "viewer" and me["tenant"] == "acme", me
    page.goto(f"{api}/ui/#/jobs")
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    page.goto(f"{api}/ui/#/keys")
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    row = page.locator("tr", has_text="made in the browser")
    expect(row).to_be_visible()
    accessible(page, "API keys (operator)")
    shot(page, screenshots, "keys-operator")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("Revoked.")).to_be_visible()
    assert call(api, "GET", "/api/v1/me", made)[0] == 401
    context.close()


def insert_jobs(api, key, count, target):
    """Makes `count` inactive jobs through the API, eight connections at a time."""
    address = urllib.parse.urlsplit(api)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    failures = []

    def insert(start, stop):
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
        for i in range(start, stop):
            name = "needle in the haystack" if i == count // 2 else f"bulk job {i:06d}"
            body = json.dumps({"name": name, "cronExpression": "0 0 3 * * *", "isActive": False,
                               "httpUrl": f"{target}/ok", "description": f"one of {count}"})
            connection.request("POST", "/api/v1/jobs", body=body, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            if response.status != 201:
                failures.append((response.status, raw[:200]))
                return

    threads = [threading.Thread(target=insert, args=(n * count // 8, (n + 1) * count // 8)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]


def many_jobs(browser, api, key, count, screenshots):
    started = time.time()
    insert_jobs(api, key, count, start_target())
    print(f"dashboard: inserted {count} inactive jobs in {time.time() - started:.0f} s")
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    pages = []

    def answered(response):
        if "/api/v1/jobs?" in response.url:
            pages.append((response.url, len(response.body())))

    page.on("response", answered)
    page.goto(f"{api}/ui/#/jobs")
    if key:
        page.locator("#api-key").fill(key)
        page.get_by_role("button", name="Use this key").click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(50)
    first = rows.first.inner_text()
    page.get_by_role("link", name="Next page").click()
    expect(rows).to_have_count(50)
    expect(rows.first).not_to_have_text(first)
    accessible(page, f"jobs ({count} jobs)")
    shot(page, screenshots, "jobs-many")

    page.locator("#sort").select_option("name")
    page.get_by_role("button", name="Search").click()
    expect(rows.first).to_contain_text("bulk job 000000")
    page.get_by_role("link", name="Next page").click()
    expect(rows.first).to_contain_text("bulk job 000050")

    page.locator("#search").fill("needle")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("needle in the haystack")

    # Every list the page asked for was one page: it never loads the whole table.
    assert pages, "the jobs page asked the API"
    for url, size in pages:
        assert "limit=50" in url, url
        assert size < 512 * 1024, (url, size)
    print(f"dashboard: {len(pages)} list requests over {count} jobs, largest {max(s for _, s in pages)} bytes")
    context.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", required=True)
    parser.add_argument("--operator-key")
    parser.add_argument("--screenshots")
    parser.add_argument("--many", type=int, help="insert this many inactive jobs and page through them")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, headless=True, args=["--no-sandbox"])
        try:
            if args.many:
                many_jobs(browser, args.api, args.operator_key, args.many, args.screenshots)
            elif args.operator_key:
                with_keys(browser, args.api, args.operator_key, args.screenshots)
            else:
                without_keys(browser, args.api, args.screenshots)
        finally:
            browser.close()
    scenario = f"{args.many} jobs" if args.many else "keys" if args.operator_key else "no keys"
    print(f"dashboard: {scenario} scenario passed against {args.api}")


if __name__ == "__main__":
    sys.exit(main())
