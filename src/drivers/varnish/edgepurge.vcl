# EdgePurge for Varnish — edgepurge-vcl/3
#
# Lets the EdgePurge agent (and nobody else) purge this cache, and stops cache hits once the agent's
# lease lapses (DESIGN invariant 4). Include it FIRST, right after `vcl 4.1;` and before your own
# subroutines:
#
#     include "/etc/varnish/edgepurge.vcl";
#
# Varnish concatenates subroutines of the same name in the order it reads them, so each vcl_* below
# runs before yours and then falls through to it: nothing here returns, except for the agent's own
# requests. Needs varnish-modules (var, xkey) and Varnish 7.x. See README.md next to this file.
#
# State lives in vmod_var globals, shared by every loaded VCL and kept across reloads (they are lost
# when varnishd restarts):
#   edgepurge.token  the agent's token, set by the agent through the admin CLI (a throw-away VCL whose
#                    vcl_init sets it); unset means every agent request is refused.
#   edgepurge.lease  epoch seconds until which hits may be served; set by the agent's authenticated
#                    lease request. Unset or past means every request is a miss (fail closed).
#   edgepurge.softpurged  when the last tag soft purge ran (see vcl_hit).
vcl 4.1;

import std;
import var;
import purge;
import xkey;

sub vcl_recv {
    # Every hit runs this and vcl_hit, so a plain GET takes as few statements and header scans as it
    # can: Varnish counts each executed statement (VPI_count), and an `unset` compares every header's
    # name in full (http_Unset) where a read compares only those of the same length.
    if (req.http.X-EdgePurge-Token ||
        (req.method != "GET" && req.method != "HEAD" &&
         req.method ~ "(?i)^(PURGE|BAN|REFRESH|SOFTPURGE|FULLBAN|URIBAN|XKEY|PURGEKEYS?|EDGEPURGE)$")) {
        call edgepurge_agent_request;
    }
    if (req.http.X-EdgePurge-Revalidate || req.http.X-EdgePurge-Fenced) {
        call edgepurge_internal_headers;
    }
    if (!(std.real(var.global_get("edgepurge.lease"), 0.0) > std.real(time = now))) {
        # No lease, or it lapsed: the agent may have missed purges, so no cached copy is served.
        # A forced miss still fetches and stores, so the cache is warm again once the lease is back.
        set req.hash_always_miss = true;
        set req.http.X-EdgePurge-Fenced = "1";
    }
}

# Our internal headers: a client request may carry none of them (X-EdgePurge-Revalidate steers vcl_recv
# after a restart, X-EdgePurge-Fenced vcl_hit); a restart keeps X-EdgePurge-Revalidate, and vcl_recv
# sets X-EdgePurge-Fenced again if the lease still lacks.
sub edgepurge_internal_headers {
    unset req.http.X-EdgePurge-Fenced;
    if (req.restarts == 0) {
        unset req.http.X-EdgePurge-Revalidate;
    } else if (req.http.X-EdgePurge-Revalidate) {
        # Restarted by edgepurge_revalidate: no grace, so the stale object is revalidated.
        set req.grace = 0s;
    }
}

# Everything the agent sends: authenticated by the token, answered here (never reaches your VCL).
sub edgepurge_agent_request {
    if (!var.global_get("edgepurge.token")) {
        set req.http.X-EdgePurge-Reason = "token-not-set";
        return (synth(403, "EdgePurge token not set"));
    }
    if (req.http.X-EdgePurge-Token != var.global_get("edgepurge.token")) {
        set req.http.X-EdgePurge-Reason = "token-mismatch";
        return (synth(403, "EdgePurge token mismatch"));
    }
    if (req.method != "PURGE") {
        return (synth(405, "EdgePurge expects PURGE"));
    }
    if (req.http.X-EdgePurge-Do == "probe") {
        return (synth(200, "EdgePurge ready"));
    }
    if (req.http.X-EdgePurge-Do == "lease") {
        if (req.http.X-EdgePurge-Lease !~ "^[0-9]{1,12}(\.[0-9]{1,6})?$") {
            return (synth(400, "EdgePurge lease must be epoch seconds"));
        }
        var.global_set("edgepurge.lease", req.http.X-EdgePurge-Lease);
        return (synth(200, "EdgePurge lease set"));
    }
    if (req.http.X-EdgePurge-Do == "tag") {
        # Keys are "ep:<host>#<tag>", as vcl_backend_response stores them.
        if (req.http.X-EdgePurge-Soft) {
            var.global_set("edgepurge.softpurged", "" + std.real(time = now));
            set req.http.X-EdgePurge-Matched = xkey.softpurge(req.http.X-EdgePurge-Keys);
        } else {
            set req.http.X-EdgePurge-Matched = xkey.purge(req.http.X-EdgePurge-Keys);
        }
        return (synth(200, "EdgePurge tag purged"));
    }
    if (req.http.X-EdgePurge-Do == "url") {
        # Look the URL up like a client request (your vcl_hash runs); vcl_hit/vcl_miss purge every
        # Vary variant under that hash. Only this authenticated PURGE reaches them: vcl_recv answers
        # every other PURGE here, before your VCL.
        return (hash);
    }
    return (synth(400, "EdgePurge: unknown X-EdgePurge-Do"));
}

sub edgepurge_purge_url {
    if (req.http.X-EdgePurge-Soft) {
        # Expired now, no grace, kept a day for a conditional revalidation (DESIGN invariant 6).
        set req.http.X-EdgePurge-Matched = purge.soft(0s, 0s, 1d);
    } else {
        # Not purge.hard(): before Varnish 7.5 it only expires the objects "now" and leaves them on the hash
        # until the expiry thread runs, and a miss in that window picks the purged copy as the stale
        # object and sends the origin its ETag / Last-Modified: a 304 would serve the deleted copy again.
        # A TTL far in the past (no grace, no keep) makes every lookup skip them at once, as xkey.purge and
        # bans do.
        set req.http.X-EdgePurge-Matched = purge.soft(-100y, 0s, 0s);
    }
    return (synth(200, "EdgePurge URL purged"));
}

sub vcl_hit {
    # One test for a plain fresh hit; the rest only for the agent's PURGE, a fenced request or an
    # expired (grace) object.
    if (req.method == "PURGE" || req.http.X-EdgePurge-Fenced || obj.ttl <= 0s) {
        call edgepurge_hit;
    }
}

sub edgepurge_hit {
    if (req.method == "PURGE") {
        call edgepurge_purge_url;
    }
    if (req.http.X-EdgePurge-Fenced) {
        # A backstop: vcl_recv forced a miss, unless a later vcl_recv undid it.
        return (pass);
    }
    if (obj.ttl <= 0s &&
        std.real(time = now + obj.ttl) <= std.real(var.global_get("edgepurge.softpurged"), 0.0) + 1.0) {
        # A grace hit on an object that expired no later than the last tag soft purge: xkey.softpurge
        # keeps grace, which would deliver the purged object stale (DESIGN invariant 6).
        call edgepurge_revalidate;
    }
}

sub vcl_miss {
    if (req.method == "PURGE") {
        call edgepurge_purge_url;
    }
}

sub edgepurge_revalidate {
    if (req.http.X-EdgePurge-Revalidate) {
        # Still a grace hit after the restart (a later vcl_recv set req.grace): fetch it through.
        return (pass);
    }
    set req.http.X-EdgePurge-Revalidate = "1";
    return (restart);
}

sub vcl_synth {
    if (req.http.X-EdgePurge-Token) {
        set resp.http.X-EdgePurge-Vcl = "3";
        if (req.http.X-EdgePurge-Reason) {
            set resp.http.X-EdgePurge-Reason = req.http.X-EdgePurge-Reason;
        }
        if (req.http.X-EdgePurge-Matched) {
            set resp.http.X-EdgePurge-Matched = req.http.X-EdgePurge-Matched;
        }
        set resp.body = resp.reason;
        return (deliver);
    }
}

sub vcl_backend_fetch {
    unset bereq.http.X-EdgePurge-Revalidate;
    unset bereq.http.X-EdgePurge-Fenced;
    # The object's host and path as looked up, before your vcl_backend_fetch may rewrite them for the
    # origin: prefix/host/all bans and tag keys name objects by what clients asked for.
    if (!var.get("edgepurge.host")) {
        var.set("edgepurge.host", regsub(std.tolower(regsub(bereq.http.host, ":[0-9]*$", "")), "\.$", ""));
        var.set("edgepurge.url", regsub(bereq.url, "^(?i)https?://[^/]*", ""));
    }
}

sub vcl_backend_response {
    # Lurker-friendly bans test only obj.* (spec PEERS §2.1): stored here, matched by the agent's bans.
    # One header, "<host> <path>" (neither holds a space): every hit's delivery unsets it, and each
    # extra header is one more name compared by every header scan.
    set beresp.http.X-EdgePurge-Key = var.get("edgepurge.host") + " " + var.get("edgepurge.url");
    # Tags (Cache-Tag, comma-separated; Surrogate-Key, space-separated) become xkey keys scoped by host.
    std.collect(beresp.http.xkey, " ");
    if (beresp.http.xkey ~ "ep:") {
        set beresp.http.xkey = regsuball(beresp.http.xkey, "(^|[\s,])ep:[^\s,]*", "");
    }
    if (beresp.http.Cache-Tag || beresp.http.Surrogate-Key) {
        std.collect(beresp.http.Cache-Tag, ",");
        std.collect(beresp.http.Surrogate-Key, " ");
        set beresp.http.xkey = beresp.http.xkey + " " + regsuball(
            beresp.http.Cache-Tag + "," + beresp.http.Surrogate-Key,
            "[^\s,]+", "ep:" + var.get("edgepurge.host") + "#\0");
    }
    if (beresp.keep < 1d && (beresp.http.ETag || beresp.http.Last-Modified)) {
        # Soft purges (invalidate) revalidate with If-None-Match / If-Modified-Since only while the
        # expired object is kept.
        set beresp.keep = 1d;
    }
}

sub vcl_deliver {
    unset resp.http.X-EdgePurge-Key;
    # std.strstr, not a regex: no PCRE match (and its match data allocation) on every hit.
    if (std.strstr(resp.http.xkey, "ep:")) {
        set resp.http.xkey = regsuball(resp.http.xkey, "(^|[\s,])ep:[^\s,]*", "");
        if (resp.http.xkey !~ "[^\s,]") {
            unset resp.http.xkey;
        }
    }
}
