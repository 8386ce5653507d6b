package oauth

// The package's tests sign in hundreds of times: hash their passwords at
// a test cost (CheckPassword follows each hash's own parameters).
// TestProductionHashCost keeps the production parameters honest.
func init() { hashCost.time, hashCost.memory = 1, 1024 }

// OnPasswordCheck makes the server built from c call hook before each
// password check, so the throttle tests can count (and hold) the checks
// that get through.
func OnPasswordCheck(c *Config, hook func()) {
	c.checkPassword = func(hash, password string) bool {
		hook()
		return CheckPassword(hash, password)
	}
}
