// Shared pieces: errors shown as the problem says, loading states, badges,
// a confirmation dialog, copyable snippets and an SVG bar chart.
import { useCallback, useEffect, useRef, useState, type ReactNode } from "react";
import { ApiError } from "./api";
import type { Problem } from "./lib/identity";

/** errorText turns any failure into the words to show. */
export function errorText(e: unknown): string {
  if (e instanceof ApiError) {
    const p = e.problem;
    const main = p.detail || p.title || `HTTP ${e.status}`;
    return p.rule ? `${main} (rule: ${p.rule})` : main;
  }
  return e instanceof Error ? e.message : String(e);
}

/** ErrorBox announces an error to screen readers and shows it. */
export function ErrorBox({ error, testid = "error" }: { error: unknown; testid?: string }) {
  if (!error) return <div aria-live="assertive" className="sr-live" />;
  return (
    <div role="alert" aria-live="assertive" className="error" data-testid={testid}>
      {errorText(error)}
    </div>
  );
}

/** ProblemList lists policy problems with their rule. */
export function ProblemList({ problems, testid = "policy-problems" }: { problems: Problem[]; testid?: string }) {
  return (
    <div aria-live="polite" data-testid={testid} className={problems.length ? "problems" : "problems ok"}>
      {problems.length === 0 ? (
        <p>No policy problems found.</p>
      ) : (
        <ul>
          {problems.map((p, i) => (
            <li key={i}>
              <code className="rule">{p.rule}</code> {p.reason}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** useLoad fetches on mount and when deps change; reload() fetches again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data: T | undefined; error: unknown; loading: boolean; reload: () => void } {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    setLoading(true);
    load().then(
      (d) => {
        if (!live) return;
        setData(d);
        setError(null);
        setLoading(false);
      },
      (e) => {
        if (!live) return;
        setError(e);
        setLoading(false);
      },
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, n]);
  const reload = useCallback(() => setN((x) => x + 1), []);
  return { data, error, loading, reload };
}

/** Loading shows that data is on its way. */
export function Loading({ what = "Loading" }: { what?: string }) {
  return (
    <p className="loading" role="status">
      {what}…
    </p>
  );
}

/** StateBadge shows a request or certificate state. */
export function StateBadge({ state, testid }: { state: string; testid?: string }) {
  return (
    <span className={`badge state-${state}`} data-testid={testid}>
      {state}
    </span>
  );
}

/** Dialog is a modal that traps nothing but takes focus and closes on Escape. */
export function Dialog({ title, onClose, children }: { title: string; onClose: () => void; children: ReactNode }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const prev = document.activeElement as HTMLElement | null;
    const first = ref.current?.querySelector<HTMLElement>("select, input, textarea, button");
    first?.focus();
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && onClose();
    document.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("keydown", onKey);
      prev?.focus();
    };
  }, [onClose]);
  return (
    <div className="backdrop">
      <div className="dialog" role="dialog" aria-modal="true" aria-labelledby="dialog-title" ref={ref}>
        <h2 id="dialog-title">{title}</h2>
        {children}
      </div>
    </div>
  );
}

/** CopyBlock shows a snippet with a copy button. */
export function CopyBlock({ label, text, testid }: { label: string; text: string; testid?: string }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied(true);
      setTimeout(() => setCopied(false), 1500);
    } catch {
      setCopied(false);
    }
  };
  return (
    <figure className="snippet">
      <figcaption>
        {label}{" "}
        <button type="button" className="small" onClick={copy} aria-label={`Copy ${label}`}>
          {copied ? "Copied" : "Copy"}
        </button>
      </figcaption>
      <pre data-testid={testid}>
        <code>{text}</code>
      </pre>
    </figure>
  );
}

/** BarChart draws counts per week as accessible SVG bars. */
export function BarChart({ title, data, testid, className = "" }: { title: string; data: { week: string; count: number }[]; testid?: string; className?: string }) {
  const w = 600;
  const h = 180;
  const pad = { l: 32, r: 8, t: 10, b: 34 };
  const max = Math.max(1, ...data.map((d) => d.count));
  const bw = data.length ? (w - pad.l - pad.r) / data.length : 0;
  const y = (v: number) => pad.t + (h - pad.t - pad.b) * (1 - v / max);
  const id = `chart-${title.replace(/\W+/g, "-").toLowerCase()}`;
  return (
    <figure className={`chart ${className}`} data-testid={testid}>
      <figcaption id={id}>{title}</figcaption>
      {data.length === 0 ? (
        <p>No data.</p>
      ) : (
        <svg viewBox={`0 0 ${w} ${h}`} role="img" aria-labelledby={id} preserveAspectRatio="xMidYMid meet">
          <line x1={pad.l} x2={w - pad.r} y1={y(0)} y2={y(0)} className="axis" />
          <text x={pad.l - 4} y={y(max) + 4} className="tick" textAnchor="end">
            {max}
          </text>
          <text x={pad.l - 4} y={y(0)} className="tick" textAnchor="end">
            0
          </text>
          {data.map((d, i) => (
            <g key={d.week}>
              <rect x={pad.l + i * bw + 2} y={y(d.count)} width={Math.max(1, bw - 4)} height={y(0) - y(d.count)} className="bar">
                <title>{`${d.week}: ${d.count}`}</title>
              </rect>
              {(data.length <= 14 || i % Math.ceil(data.length / 14) === 0) && (
                <text x={pad.l + i * bw + bw / 2} y={h - pad.b + 14} className="tick" textAnchor="middle">
                  {d.week.replace(/^\d{4}-/, "")}
                </text>
              )}
            </g>
          ))}
        </svg>
      )}
      <table className="sr-only">
        <caption>{title}</caption>
        <tbody>
          {data.map((d) => (
            <tr key={d.week}>
              <th scope="row">{d.week}</th>
              <td>{d.count}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}

/** fmtDate shows a timestamp in the user's locale (or a dash). */
export function fmtDate(s?: string | null): string {
  if (!s) return "—";
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? s : d.toLocaleString();
}

/** shortId shortens an id for tables. */
export function shortId(id: string): string {
  return id.length > 12 ? id.slice(0, 8) + "…" : id;
}
