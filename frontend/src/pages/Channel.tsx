// The channel a request came through (portal, ACME, EST, mTLS renewal)
// with the binding, account, order or certificate it came from.
import { shortId } from "../components";
import { requestChannel } from "../lib/acme";
import { Link } from "../router";

/** ChannelLabel shows the channel; with refs, the references too (a binding links to the page of ACME bindings (API tokens and ACME)). */
export function ChannelLabel({ r, refs = false, testid }: { r: { via?: string; via_ref?: string; requested_by?: string }; refs?: boolean; testid?: string }) {
  const c = requestChannel(r);
  return (
    <span className="channel" data-testid={testid} data-channel={c.channel}>
      <span className={`badge via-${c.channel}`}>{c.label}</span>
      {refs &&
        c.refs.map((ref) => (
          <span key={ref.kind} className="muted">
            {" "}
            {ref.kind}{" "}
            {ref.kind === "binding" ? (
              <Link href="/tokens">
                <code title={ref.id}>{shortId(ref.id)}</code>
              </Link>
            ) : (
              <code title={ref.id}>{shortId(ref.id)}</code>
            )}
          </span>
        ))}
    </span>
  );
}
