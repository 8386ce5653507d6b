package shop

import (
	"encoding/json"

	"github.com/ucpbridge/ucpbridge/authserver/metrics"
	"github.com/ucpbridge/ucpbridge/ucpclient/ucp"
)

// completionOutcome names a completion attempt's result for the
// completions counter: a few fixed values, so the label stays bounded.
func completionOutcome(placed bool, rep *Reply) string {
	switch {
	case placed:
		return metrics.OutcomeCompleted
	case rep == nil || rep.Err != nil || rep.Status >= 500:
		return metrics.OutcomeError
	}
	var c struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(rep.Body, &c) == nil && c.Status == ucp.CheckoutRequiresEscalation {
		return metrics.OutcomeEscalation
	}
	return metrics.OutcomeRefused
}
