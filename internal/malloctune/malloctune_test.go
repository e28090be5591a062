package malloctune

import "testing"

func TestApplyTakesOnGlibc(t *testing.T) {
	for range 2 { // idempotent
		if got := Apply(); got != glibc {
			t.Fatalf("Apply() = %v on a build with glibc = %v", got, glibc)
		}
	}
}
