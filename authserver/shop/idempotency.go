package shop

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ucpbridge/ucpbridge/authserver/store"
	"github.com/ucpbridge/ucpbridge/mandate"
)

// The accepted idempotency key: 16 to 255 visible ASCII characters
// (0x21-0x7E: no spaces, no control characters). UCP gives the key the
// format uuid (rest.openapi.json, mcp.openrpc.json), which this admits;
// so are the 32 hex digits or base64url strings other clients send.
const (
	minIdemKey = 16
	maxIdemKey = 255
	// idemKeyForm says so, in every refusal of a key.
	idemKeyForm = "16 to 255 visible ASCII characters (0x21-0x7E, no spaces), e.g. a UUID such as 550e8400-e29b-41d4-a716-446655440000"
)

// checkIdemKey refuses a request whose idempotency key is present but
// not of the accepted form, an empty one included (a key sent empty is a
// client mistake, not the absence of a key: running the call without the
// protection the client thought it asked for could charge twice), and a
// call that requires a key and has none.
func checkIdemKey(req *Request, info opInfo) *Reply {
	switch {
	case req.IdempotencyKeyEmpty:
		return protoErr(http.StatusBadRequest, rpcParams, "invalid_idempotency_key",
			"the idempotency key is empty; send "+idemKeyForm+", or no key at all where none is required")
	case req.IdempotencyKey == "" && info.needsKey:
		return protoErr(http.StatusBadRequest, rpcParams, "idempotency_key_required",
			string(req.Op)+" requires an idempotency key (Idempotency-Key header or meta[\"idempotency-key\"]): "+idemKeyForm)
	case req.IdempotencyKey != "" && !validIdemKey(req.IdempotencyKey):
		return protoErr(http.StatusBadRequest, rpcParams, "invalid_idempotency_key", "the idempotency key must be "+idemKeyForm)
	}
	return nil
}

func validIdemKey(k string) bool {
	if len(k) < minIdemKey || len(k) > maxIdemKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] > '~' {
			return false
		}
	}
	return true
}

// idempotent runs a mutating operation at most once per (caller, key):
// a retry gets the stored response; the same key on another request is a
// conflict; a duplicate that arrives while the first runs waits for it.
// Any storage failure fails closed (503): running the operation without
// the guarantee could charge twice.
func (s *Service) idempotent(ctx context.Context, oc *opCtx) *Reply {
	key := store.IdemKey{Scope: oc.owner(), Key: oc.IdempotencyKey}
	hash := requestHash(oc.Request)
	deadline := s.now().Add(s.cfg.IdempotencyWait)
	wait := 2 * time.Millisecond
	for {
		rec, err := s.cfg.Store.ClaimIdempotency(ctx, key, hash, s.now(), s.cfg.IdempotencyLease, s.cfg.IdempotencyTTL)
		switch {
		case err == nil && rec == nil:
			rep := s.run(ctx, oc)
			if rep == nil {
				rep = internalError()
			}
			if rep.Err != nil {
				// Protocol errors are not outcomes: the request had no
				// effect, so a retry may run it.
				if err := s.cfg.Store.ReleaseIdempotency(context.WithoutCancel(ctx), key); err != nil {
					s.log.ErrorContext(ctx, "shop: release idempotency key", "err", err)
				}
				return rep
			}
			if err := s.cfg.Store.FinishIdempotency(context.WithoutCancel(ctx), key, rep.Status, rep.Body); err != nil {
				s.log.ErrorContext(ctx, "shop: store idempotent response", "err", err)
			}
			return rep
		case err == nil && rec.Done:
			if !sameHash(rec.RequestHash, hash) {
				return idemConflict()
			}
			return &Reply{Status: rec.Status, Body: rec.Body}
		case errors.Is(err, store.ErrInProgress):
			if rec != nil && !sameHash(rec.RequestHash, hash) {
				return idemConflict()
			}
			if !s.now().Before(deadline) {
				r := protoErr(http.StatusConflict, rpcAuth, "idempotency_in_progress",
					"a request with this idempotency key is still running; retry later")
				r.Err.RetryAfter = 1
				return r
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return unavailable("request canceled")
			case <-t.C:
			}
			wait = min(wait*2, 50*time.Millisecond)
		default:
			s.failure(ctx, "shop: claim idempotency key", err)
			return unavailable("idempotency storage is unavailable")
		}
	}
}

func idemConflict() *Reply {
	return protoErr(http.StatusConflict, rpcAuth, "idempotency_conflict",
		"this idempotency key was used with a different request")
}

// requestHash identifies a request for idempotency: the operation, target
// and body. The body is canonicalised (RFC 8785) so a retry that
// re-serialises the same JSON, as the MCP binding does, still matches.
func requestHash(r *Request) []byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", r.Op, r.Shop, r.ID)
	if len(r.Body) > 0 {
		if c, err := mandate.Canonicalize(r.Body); err == nil {
			h.Write(c)
		} else {
			h.Write(r.Body)
		}
	}
	return h.Sum(nil)
}

func sameHash(a, b []byte) bool { return string(a) == string(b) }
