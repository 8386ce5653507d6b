package shop

import "math"

// The WGS 84 ellipsoid.
const (
	wgs84A = 6378137.0             // semi-major axis, metres
	wgs84F = 1 / 298.257223563     // flattening
	wgs84B = wgs84A * (1 - wgs84F) // semi-minor axis
	// halfMeridian is the longest shortest path on the ellipsoid: from
	// pole to pole. Every pair of points lies within it.
	halfMeridian = 20_003_931.4586
)

// Geo is a WGS 84 point in decimal degrees (geo.json).
type Geo struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
}

// geodesicMetres is the shortest distance in metres between a and b over
// the WGS 84 ellipsoid, by Vincenty's inverse formula (T. Vincenty, "Direct
// and inverse solutions of geodesics on the ellipsoid", Survey Review
// XXIII, 1975), iterated to 1e-12 radians: well under a millimetre, the
// precision the UCP location draft's distance relation asks for (it
// compares the unrounded ellipsoidal length with the radius; a spherical
// formula such as Haversine is off by up to 0.5 % and would misjudge
// locations near the boundary). It is the Artos SDK's geodesicMetres.
//
// ok is false where the formula does not converge: nearly antipodal
// points (within about half a degree of each other's antipode), where
// Vincenty's iteration oscillates. The caller decides what that means;
// the SDK's answer there (0 m) would put the far side of the Earth inside
// any radius.
func geodesicMetres(a, b Geo) (metres float64, ok bool) {
	rad := math.Pi / 180
	u1 := math.Atan((1 - wgs84F) * math.Tan(a.Latitude*rad))
	u2 := math.Atan((1 - wgs84F) * math.Tan(b.Latitude*rad))
	sinU1, cosU1 := math.Sincos(u1)
	sinU2, cosU2 := math.Sincos(u2)
	// The longitude difference in [-π, π]: across the 180° meridian the
	// same rule applies, with no special case.
	l := math.Remainder((b.Longitude-a.Longitude)*rad, 2*math.Pi)
	lambda := l
	var sinSigma, cosSigma, sigma, cosSqAlpha, cos2SigmaM float64
	converged := false
	for range 200 {
		sinLambda, cosLambda := math.Sincos(lambda)
		sinSigma = math.Hypot(cosU2*sinLambda, cosU1*sinU2-sinU1*cosU2*cosLambda)
		cosSigma = sinU1*sinU2 + cosU1*cosU2*cosLambda
		if sinSigma == 0 {
			// The same point, or exact antipodes (where every meridian
			// is a shortest path and the formula has no answer).
			if cosSigma > 0 {
				return 0, true
			}
			return 0, false
		}
		sigma = math.Atan2(sinSigma, cosSigma)
		sinAlpha := cosU1 * cosU2 * sinLambda / sinSigma
		cosSqAlpha = 1 - sinAlpha*sinAlpha
		cos2SigmaM = 0 // an equatorial line
		if cosSqAlpha != 0 {
			cos2SigmaM = cosSigma - 2*sinU1*sinU2/cosSqAlpha
		}
		c := wgs84F / 16 * cosSqAlpha * (4 + wgs84F*(4-3*cosSqAlpha))
		prev := lambda
		lambda = l + (1-c)*wgs84F*sinAlpha*(sigma+c*sinSigma*(cos2SigmaM+c*cosSigma*(-1+2*cos2SigmaM*cos2SigmaM)))
		if math.Abs(lambda) > math.Pi {
			return 0, false // diverging: nearly antipodal
		}
		if math.Abs(lambda-prev) < 1e-12 {
			converged = true
			break
		}
	}
	if !converged {
		return 0, false
	}
	uSq := cosSqAlpha * (wgs84A*wgs84A - wgs84B*wgs84B) / (wgs84B * wgs84B)
	bigA := 1 + uSq/16384*(4096+uSq*(-768+uSq*(320-175*uSq)))
	bigB := uSq / 1024 * (256 + uSq*(-128+uSq*(74-47*uSq)))
	deltaSigma := bigB * sinSigma * (cos2SigmaM + bigB/4*(cosSigma*(-1+2*cos2SigmaM*cos2SigmaM)-
		bigB/6*cos2SigmaM*(-3+4*sinSigma*sinSigma)*(-3+4*cos2SigmaM*cos2SigmaM)))
	return wgs84B * bigA * (sigma - deltaSigma), true
}
