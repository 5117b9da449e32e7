// The shell: who is signed in, the navigation for their role, the demo-key
// banner, and the routes. A 401 shows the sign-in page; any other failure
// shows the problem detail, never a blank page.
import { Component, Suspense, lazy, useEffect, useState, type ReactNode } from "react";
import { api, ApiError, setCSRFToken, signOut, type CertRequest, type Me, type Page } from "./api";
import { ErrorBox, Loading, errorText, useLoad } from "./components";
import { mayOpen, pendingCount, requestsChanged } from "./lib/pages";
import { Link, match, useLocation } from "./router";

// Pages load on demand: the CSR and PKCS#12 code (pkijs, @peculiar/x509) is
// fetched only by the pages that use it.
const AdminQueue = lazy(() => import("./pages/Admin").then((m) => ({ default: m.AdminQueue })));
const Orgs = lazy(() => import("./pages/Admin").then((m) => ({ default: m.Orgs })));
const RevocationPage = lazy(() => import("./pages/Admin").then((m) => ({ default: m.RevocationPage })));
const Audit = lazy(() => import("./pages/Audit").then((m) => ({ default: m.Audit })));
const CertificatePage = lazy(() => import("./pages/CertificatePage").then((m) => ({ default: m.CertificatePage })));
const Dashboard = lazy(() => import("./pages/Dashboard").then((m) => ({ default: m.Dashboard })));
const CertificatesList = lazy(() => import("./pages/Lists").then((m) => ({ default: m.CertificatesList })));
const RequestsList = lazy(() => import("./pages/Lists").then((m) => ({ default: m.RequestsList })));
const NewRequest = lazy(() => import("./pages/NewRequest").then((m) => ({ default: m.NewRequest })));
const RequestPage = lazy(() => import("./pages/RequestPage").then((m) => ({ default: m.RequestPage })));
const Users = lazy(() => import("./pages/Users").then((m) => ({ default: m.Users })));
const Tokens = lazy(() => import("./pages/Tokens").then((m) => ({ default: m.Tokens })));

export function App() {
  const [me, setMe] = useState<Me | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [signedOut, setSignedOut] = useState(false);
  useEffect(() => {
    api<Me>("/api/v1/me").then(
      (m) => {
        setCSRFToken(m.csrf_token);
        setMe(m);
      },
      (e) => {
        if (e instanceof ApiError && e.status === 401) setSignedOut(true);
        else setError(e);
      },
    );
  }, []);
  if (signedOut) return <SignIn />;
  if (error)
    return (
      <main className="center">
        <h1>certdesk</h1>
        <ErrorBox error={error} />
      </main>
    );
  if (!me) return <Loading what="Signing in" />;
  return <Shell me={me} />;
}

function SignIn() {
  const next = location.pathname + location.search;
  return (
    <main className="center signin">
      <h1>certdesk</h1>
      <p>Client certificates for partners: request, approve, download, revoke.</p>
      <a className="button primary" href={`/auth/login?next=${encodeURIComponent(next)}`} data-testid="sign-in">
        Sign in
      </a>
    </main>
  );
}

function Shell({ me }: { me: Me }) {
  const { path } = useLocation();
  const [menu, setMenu] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const links: [string, string, boolean][] = [
    ["/", "Dashboard", me.role !== "auditor"],
    ["/requests/new", "New request", me.role !== "auditor"],
    ["/queue", "Pending", me.role === "admin"],
    ["/requests", "Requests", true],
    ["/certificates", "Certificates", true],
    ["/orgs", "Organisations", me.role === "admin"],
    ["/users", "Users", me.role === "admin"],
    ["/revocation", "Revocation", me.role !== "partner"],
    ["/audit", "Audit", me.role !== "partner"],
    ["/tokens", "Tokens", true],
  ];
  useEffect(() => setMenu(false), [path]);
  // Admins see how many requests wait, refreshed on every page change.
  const pending = useLoad(
    () => (me.role === "admin" ? api<Page<CertRequest>>("/api/v1/requests?state=submitted&limit=100") : Promise.resolve(null)),
    [path, me.role],
  );
  const waiting = pending.data ? pendingCount(pending.data.items, pending.data.next) : "0";
  const reloadPending = pending.reload;
  useEffect(() => {
    window.addEventListener(requestsChanged, reloadPending);
    return () => window.removeEventListener(requestsChanged, reloadPending);
  }, [reloadPending]);
  return (
    <>
      <a href="#main" className="skip">
        Skip to content
      </a>
      {me.demo_key && (
        <div className="demo-banner" role="note" data-testid="demo-banner">
          demo key — not for production
        </div>
      )}
      <header className="top">
        <Link href={me.role === "auditor" ? "/audit" : "/"} className="brand">
          certdesk{me.demo ? " (demo)" : ""}
        </Link>
        <button type="button" className="menu-toggle" aria-expanded={menu} aria-controls="nav" onClick={() => setMenu(!menu)}>
          Menu
        </button>
        <nav id="nav" aria-label="Main" className={menu ? "open" : ""}>
          <ul>
            {links
              .filter(([, , show]) => show)
              .map(([href, label]) => (
                <li key={href}>
                  <Link href={href} aria-current={path === href ? "page" : undefined} data-testid={`nav-${href.replace(/\//g, "") || "home"}`}>
                    {label}
                    {href === "/queue" && waiting !== "0" && (
                      <span className="count" data-testid="pending-badge" aria-label={`${waiting} waiting`}>
                        {waiting}
                      </span>
                    )}
                  </Link>
                </li>
              ))}
          </ul>
        </nav>
        <div className="who">
          <span data-testid="whoami">
            {me.name || me.subject} · {me.role}
            {me.org ? ` · ${me.org}` : ""}
          </span>
          <button type="button" className="small" onClick={() => signOut().catch(setError)} data-testid="sign-out">
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <ErrorBox error={error} />
        <Boundary key={path}>
          <Suspense fallback={<Loading />}>
            <Route me={me} path={path} />
          </Suspense>
        </Boundary>
      </main>
    </>
  );
}

function Route({ me, path }: { me: Me; path: string }) {
  let m: Record<string, string> | null;
  if (!mayOpen(me.role, path)) return <NotAllowed me={me} path={path} />;
  if (path === "/") return me.role === "auditor" ? <Audit /> : <Dashboard me={me} />;
  if (path === "/requests/new") return <NewRequest me={me} />;
  if (path === "/requests") return <RequestsList me={me} />;
  if ((m = match("/requests/:id", path))) return <RequestPage me={me} id={m.id} />;
  if (path === "/certificates") return <CertificatesList me={me} />;
  if ((m = match("/certificates/:id", path))) return <CertificatePage me={me} id={m.id} />;
  if (path === "/queue") return <AdminQueue me={me} />;
  if (path === "/orgs") return <Orgs />;
  if (path === "/users" && me.role === "admin") return <Users />;
  if (path === "/revocation") return <RevocationPage />;
  if (path === "/audit") return <Audit />;
  if (path === "/tokens") return <Tokens me={me} />;
  return (
    <section>
      <h1>Not found</h1>
      <p>
        There is no page at <code>{path}</code>. <Link href="/">Go to the dashboard</Link>.
      </p>
    </section>
  );
}

/** NotAllowed is the plain page a role gets for a page it may not open; the server refuses the data too. */
function NotAllowed({ me, path }: { me: Me; path: string }) {
  return (
    <section data-testid="not-allowed">
      <h1>Not available to you</h1>
      <p>
        The page <code>{path}</code> is not open to the {me.role} role. <Link href={me.role === "auditor" ? "/audit" : "/"}>Go to your start page</Link>.
      </p>
    </section>
  );
}

/** Boundary shows a page's crash as a message instead of a blank page. */
class Boundary extends Component<{ children: ReactNode }, { error: unknown }> {
  state = { error: null as unknown };
  static getDerivedStateFromError(error: unknown) {
    return { error };
  }
  render() {
    if (this.state.error)
      return (
        <div role="alert" className="error">
          This page failed: {errorText(this.state.error)}
        </div>
      );
    return this.props.children;
  }
}
