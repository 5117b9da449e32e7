package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// a11yAudit lists what a screen-reader user would miss on the current page:
// no language or title, no h1 in main, form controls without a label,
// buttons and links without a name, images without alt, charts without a
// name, duplicate ids (which break label and aria references).
const a11yAudit = `(() => {
  const problems = [];
  const visible = (el) => { const r = el.getBoundingClientRect(), s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none"; };
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.dataset.testid ? "[data-testid=" + el.dataset.testid + "]" : "") + (el.name ? "[name=" + el.name + "]" : "");
  const named = (el) => {
    if ((el.getAttribute("aria-label") || "").trim()) return true;
    const by = el.getAttribute("aria-labelledby");
    if (by && by.split(/\s+/).some((id) => ((document.getElementById(id) || {}).textContent || "").trim())) return true;
    if (el.labels && [...el.labels].some((l) => l.textContent.trim())) return true;
    return !!(el.getAttribute("title") || "").trim();
  };
  if (!document.documentElement.lang) problems.push("<html> has no lang");
  if (!document.title.trim()) problems.push("the document has no title");
  if (!document.querySelector("main h1")) problems.push("no h1 in main");
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden" || (!visible(el) && el.type !== "file")) continue;
    if (!named(el)) problems.push("form control without a label: " + describe(el));
  }
  for (const el of document.querySelectorAll("button, a[href], [role=button]")) {
    if (visible(el) && !(el.textContent.trim() || named(el))) problems.push("control without a name: " + describe(el));
  }
  for (const el of document.querySelectorAll("img")) if (!el.hasAttribute("alt")) problems.push("img without alt: " + el.src);
  for (const el of document.querySelectorAll("svg")) {
    if (el.closest("[aria-hidden=true]") || !visible(el)) continue;
    if (!(el.getAttribute("role") === "img" && (named(el) || el.querySelector("title")))) problems.push("svg without role=img and a name: " + describe(el));
  }
  const ids = new Set();
  for (const el of document.querySelectorAll("[id]")) { if (ids.has(el.id)) problems.push("duplicate id " + el.id); ids.add(el.id); }
  return problems;
})()`

// TestE2E_ScreenReaderKeyboardAndPhone checks every page of every role in
// Chromium for what a screen reader needs (a11yAudit), walks the partner's
// way to a new request with the keyboard alone, and shows every page at a
// phone's width (390 px) without sideways scrolling and with the menu
// behind its button. Screenshots go to testout/e2e/a11y/.
func TestE2E_ScreenReaderKeyboardAndPhone(t *testing.T) {
	requireFrontend(t)
	shots := filepath.Join(repoRoot(t), "testout", "e2e", "a11y")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	p := startE2EPortal(t, "sqlite")
	b := newE2EBrowser(t, shots)
	pages := map[string][]string{
		"partner": {"/", "/requests/new", "/requests", "/certificates", "/tokens"},
		"admin":   {"/", "/queue", "/orgs", "/revocation", "/certificates", "/audit"},
		"auditor": {"/audit", "/revocation", "/requests"},
	}
	for _, name := range []string{"partner", "admin", "auditor"} {
		u := b.user(t, name)
		u.signIn(p.URL, "a11y")
		if name == "partner" {
			keyboardToNewRequest(t, u, p.URL)
		}
		for _, path := range pages[name] {
			shot := name + strings.ReplaceAll(path, "/", "-")
			if path == "/" {
				shot = name + "-home"
			}
			u.do("opening "+path, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(p.URL+path), chromedp.WaitVisible(chromedp.CSS("main h1")))
			u.settle()
			if problems := eval[[]string](u, "auditing "+path, a11yAudit); len(problems) > 0 {
				u.shot("FAILED-a11y-" + shot)
				t.Errorf("%s %s: %s", name, path, strings.Join(problems, "; "))
			}
			u.do("phone width on "+path, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch),
				chromedp.Navigate(p.URL+path), chromedp.WaitVisible(chromedp.CSS("main h1")))
			u.settle()
			if w := eval[[]int](u, "measuring "+path, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
				u.shot("FAILED-phone-" + shot)
				t.Errorf("%s %s on a phone: the page is %d px wide in a %d px window", name, path, w[0], w[1])
			}
			if eval[bool](u, "menu on "+path, `getComputedStyle(document.getElementById("nav")).display !== "none" && document.getElementById("nav").getBoundingClientRect().height > 0`) {
				t.Errorf("%s %s on a phone: the menu is open before its button is pressed", name, path)
			}
			u.shot("phone-" + shot)
		}
		u.do("opening the menu on a phone", chromedp.Click(chromedp.CSS(".menu-toggle")), chromedp.WaitVisible(chromedp.CSS("#nav a")))
		if !eval[bool](u, "menu state", `document.querySelector(".menu-toggle").getAttribute("aria-expanded") === "true"`) {
			t.Errorf("%s: the menu button does not say it is expanded", name)
		}
		u.shot("phone-" + name + "-menu")
		u.do("back to a laptop", chromedp.EmulateViewport(1280, 900))
		u.checkConsole(t)
		if name == "auditor" {
			auditFindsPlantedProblems(t, u)
		}
	}
}

// auditFindsPlantedProblems shows that a11yAudit is not blind: a page with
// an unlabelled input, an empty button, an unnamed chart and a repeated id
// is reported.
func auditFindsPlantedProblems(t *testing.T, u *e2eUser) {
	t.Helper()
	eval[bool](u, "planting problems", `(() => { document.querySelector("main").insertAdjacentHTML("beforeend",
	  '<input id="planted"><button id="planted"></button><svg width="20" height="20"><rect width="20" height="20"/></svg>'); return true; })()`)
	got := strings.Join(eval[[]string](u, "auditing the planted page", a11yAudit), "; ")
	for _, want := range []string{"form control without a label: input#planted", "control without a name: button#planted", "svg without role=img", "duplicate id planted"} {
		if !strings.Contains(got, want) {
			t.Errorf("the audit missed %q; it reported: %s", want, got)
		}
	}
}

// keyboardToNewRequest: from the dashboard, Tab first reaches "Skip to
// content", which moves the focus to the main content; Tab then walks the
// menu to "New request" (each stop visibly focused), and Enter opens it.
func keyboardToNewRequest(t *testing.T, u *e2eUser, portalURL string) {
	t.Helper()
	u.do("opening the dashboard", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(portalURL+"/"), chromedp.WaitVisible(tid("new-request")))
	focused := func() string {
		return eval[string](u, "reading the focus", `(() => { const e = document.activeElement;
		  return e ? (e.dataset.testid || e.id || e.textContent.trim()) : ""; })()`)
	}
	u.do("Tab", chromedp.KeyEvent(kb.Tab))
	if got := focused(); got != "Skip to content" {
		t.Fatalf("the first Tab focuses %q, want the skip link", got)
	}
	u.do("Enter on the skip link", chromedp.KeyEvent(kb.Enter))
	if got := focused(); got != "main" {
		t.Fatalf("the skip link moved the focus to %q, want main", got)
	}
	u.do("back to the top", chromedp.Navigate(portalURL+"/"), chromedp.WaitVisible(tid("new-request")))
	var stops []string
	for i := 0; i < 12 && focused() != "nav-requestsnew"; i++ {
		u.do("Tab", chromedp.KeyEvent(kb.Tab))
		stops = append(stops, focused())
		if !eval[bool](u, "focus indicator", `(() => { const s = getComputedStyle(document.activeElement);
		  return (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== "none"; })()`) {
			t.Errorf("Tab stop %q shows no focus indicator", stops[len(stops)-1])
		}
	}
	if focused() != "nav-requestsnew" {
		t.Fatalf("Tab never reached New request; stops: %s", strings.Join(stops, ", "))
	}
	u.do("Enter on New request", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(tid("csr-file")))
	if got := u.path(); got != "/requests/new" {
		t.Fatalf("Enter on New request led to %q", got)
	}
	t.Logf("keyboard: %d Tab stops to New request: %s", len(stops), strings.Join(stops, " → "))
	u.shot("keyboard-new-request")
}

// settle lets the page finish loading its data.
func (u *e2eUser) settle() {
	u.do("settling", chromedp.Sleep(300*time.Millisecond))
}
