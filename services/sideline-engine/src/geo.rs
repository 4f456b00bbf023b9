//! Latitude/longitude onto a local metric plane.
//!
//! Fixes are converted to WGS84 Earth-centred Earth-fixed coordinates and then to local
//! east/north metres in the tangent plane at a reference point (the player's first fix). Over a
//! pitch (≤ 200 m from the origin) the tangent plane departs from the ellipsoid surface by
//! under 3 mm, so distances are exact for practical purposes. Treating degrees as metres, or
//! ignoring the cos(latitude) shrink of longitude, is the mistake this avoids.

use serde::{Deserialize, Serialize};

/// WGS84 semi-major axis, m.
const WGS84_A: f64 = 6_378_137.0;
/// WGS84 flattening.
const WGS84_F: f64 = 1.0 / 298.257_223_563;

/// A local east-north-up frame anchored at a reference fix.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LocalPlane {
    origin_ecef: [f64; 3],
    sin_lat: f64,
    cos_lat: f64,
    sin_lon: f64,
    cos_lon: f64,
}

fn ecef(lat_deg: f64, lon_deg: f64) -> [f64; 3] {
    let e2 = WGS84_F * (2.0 - WGS84_F);
    let (sl, cl) = lat_deg.to_radians().sin_cos();
    let (so, co) = lon_deg.to_radians().sin_cos();
    let n = WGS84_A / (1.0 - e2 * sl * sl).sqrt();
    [n * cl * co, n * cl * so, n * (1.0 - e2) * sl]
}

impl LocalPlane {
    /// A plane whose origin is at `(lat, lon)` in degrees, on the ellipsoid (height 0).
    pub fn new(lat_deg: f64, lon_deg: f64) -> Self {
        let (sin_lat, cos_lat) = lat_deg.to_radians().sin_cos();
        let (sin_lon, cos_lon) = lon_deg.to_radians().sin_cos();
        LocalPlane {
            origin_ecef: ecef(lat_deg, lon_deg),
            sin_lat,
            cos_lat,
            sin_lon,
            cos_lon,
        }
    }

    /// East and north metres of `(lat, lon)` from the origin.
    pub fn project(&self, lat_deg: f64, lon_deg: f64) -> (f64, f64) {
        let p = ecef(lat_deg, lon_deg);
        let d = [
            p[0] - self.origin_ecef[0],
            p[1] - self.origin_ecef[1],
            p[2] - self.origin_ecef[2],
        ];
        let east = -self.sin_lon * d[0] + self.cos_lon * d[1];
        let north = -self.sin_lat * self.cos_lon * d[0] - self.sin_lat * self.sin_lon * d[1]
            + self.cos_lat * d[2];
        (east, north)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousandth_of_a_degree_of_longitude_at_the_equator_is_111_3_m() {
        let p = LocalPlane::new(0.0, 10.0);
        let (e, n) = p.project(0.0, 10.001);
        // a · π/180 · 0.001 = 111.3195 m (chord vs arc differs by < 1 µm here).
        assert!((e - 111.319_49).abs() < 1e-3, "{e}");
        assert!(n.abs() < 1e-3);
    }

    #[test]
    fn north_steps_follow_the_meridional_radius_of_curvature() {
        let lat: f64 = 53.3;
        let e2 = WGS84_F * (2.0 - WGS84_F);
        let m = WGS84_A * (1.0 - e2) / (1.0 - e2 * lat.to_radians().sin().powi(2)).powf(1.5);
        let expect = m * 0.001_f64.to_radians();
        let p = LocalPlane::new(lat, -6.2);
        let (e, n) = p.project(lat + 0.001, -6.2);
        assert!((n - expect).abs() < 1e-3, "{n} vs {expect}");
        assert!(e.abs() < 1e-6);
    }

    #[test]
    fn longitude_shrinks_with_cos_latitude() {
        let lat: f64 = 60.0;
        let p = LocalPlane::new(lat, 5.0);
        let (e, _) = p.project(lat, 5.001);
        let e2 = WGS84_F * (2.0 - WGS84_F);
        let n = WGS84_A / (1.0 - e2 * lat.to_radians().sin().powi(2)).sqrt();
        let expect = n * lat.to_radians().cos() * 0.001_f64.to_radians();
        assert!((e - expect).abs() < 1e-3, "{e} vs {expect}");
        assert!((e - 55.8).abs() < 0.2, "about half of 111 m at 60°N: {e}");
    }
}
