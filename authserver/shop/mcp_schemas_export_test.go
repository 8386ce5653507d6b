package shop

import "encoding/json"

// MCPOutputSchema is the outputSchema a UCP tool publishes (nil for a
// tool without one of its own), for the external tests to hold results
// to it.
func MCPOutputSchema(tool string) json.RawMessage {
	if ts := toolSchemas[Op(tool)]; ts != nil {
		return ts.output
	}
	return nil
}
