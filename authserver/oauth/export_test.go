package oauth

// The package's tests sign in hundreds of times: hash their passwords at
// a test cost (CheckPassword follows each hash's own parameters).
// TestProductionHashCost keeps the production parameters honest.
func init() { hashCost.time, hashCost.memory = 1, 1024 }
