//! Per-instance subnets from an address pool that dbaas manages
//! (DBAAS_SUBNET_POOL, cut into DBAAS_SUBNET_PREFIX-sized blocks), so that
//! the number of instances is not bounded by Docker's default address
//! pools (about 30 bridge networks). Each instance keeps its own bridge
//! network, so instances still cannot reach each other's containers. A
//! block is allocated under the registry lock; blocks overlapping a
//! network the host has (another home's instances, other Docker networks)
//! are skipped, and a pool overlapping a network that is not Docker's (the
//! host's LAN) is refused.

use crate::error::{Error, Result};
use std::net::Ipv4Addr;

/// An IPv4 network: its first address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    pub addr: u32,
    pub prefix: u8,
}

impl Net {
    /// `a.b.c.d/n` with no host bits set.
    pub fn parse(s: &str) -> std::result::Result<Net, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("'{s}' is not a network like 10.199.0.0/16"))?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("'{a}' is not an IPv4 address"))?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("'{p}' is not a prefix length from 0 to 32"))?;
        let net = Net {
            addr: u32::from(addr),
            prefix,
        };
        if net.addr & !net.mask() != 0 {
            return Err(format!(
                "'{s}' has host bits set; the network is {}",
                Net {
                    addr: net.addr & net.mask(),
                    prefix
                }
            ));
        }
        Ok(net)
    }

    pub fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    fn last(self) -> u32 {
        self.addr | !self.mask()
    }

    pub fn overlaps(self, other: Net) -> bool {
        self.addr <= other.last() && other.addr <= self.last()
    }

    /// The blocks of `prefix` bits this network holds, in order.
    fn blocks(self, prefix: u8) -> impl Iterator<Item = Net> {
        let step = 1u64 << (32 - u32::from(prefix));
        let count = 1u64 << (u32::from(prefix) - u32::from(self.prefix.min(prefix)));
        let base = u64::from(self.addr);
        (0..count).map(move |i| Net {
            addr: (base + i * step) as u32,
            prefix,
        })
    }
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.addr), self.prefix)
    }
}

/// A network the host routes to directly, and through which interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub iface: String,
    pub net: Net,
}

impl Route {
    /// A bridge Docker made (its default `docker0`, a network's `br-...`):
    /// a block overlapping one is skipped, not a reason to refuse the pool.
    fn docker_bridge(&self) -> bool {
        self.iface == "docker0" || self.iface.starts_with("br-")
    }
}

/// The host's IPv4 routes (from /proc/net/route), without the default route.
pub fn host_routes() -> Vec<Route> {
    std::fs::read_to_string("/proc/net/route")
        .map(|t| parse_routes(&t))
        .unwrap_or_default()
}

/// /proc/net/route: a header, then `Iface Destination Gateway Flags RefCnt
/// Use Metric Mask ...` with addresses as little-endian hex.
pub fn parse_routes(text: &str) -> Vec<Route> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?.swap_bytes();
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?.swap_bytes();
            // Only contiguous masks are networks; 0/0 is the default route.
            if mask == 0 || mask.leading_ones() + mask.trailing_zeros() != 32 {
                return None;
            }
            Some(Route {
                iface: f[0].to_string(),
                net: Net {
                    addr: dest & mask,
                    prefix: mask.leading_ones() as u8,
                },
            })
        })
        .collect()
}

/// The first block of `pool` that no instance holds (`taken`) and no host
/// route overlaps. A pool overlapping a network that is not Docker's is
/// refused: its blocks would shadow the host's own network.
pub fn pick(pool: Net, prefix: u8, taken: &[Net], routes: &[Route]) -> Result<Net> {
    if let Some(r) = routes
        .iter()
        .find(|r| !r.docker_bridge() && r.net.overlaps(pool))
    {
        return Err(Error::invalid(
            "DBAAS_SUBNET_POOL",
            format!(
                "{pool} overlaps the host's network {} (on {}); choose a range the host does not use, e.g. DBAAS_SUBNET_POOL=10.199.0.0/16",
                r.net, r.iface
            ),
        ));
    }
    pool.blocks(prefix)
        .find(|b| {
            !taken.iter().any(|t| t.overlaps(*b)) && !routes.iter().any(|r| r.net.overlaps(*b))
        })
        .ok_or_else(|| {
            Error::Conflict(format!(
                "no free /{prefix} network left in DBAAS_SUBNET_POOL {pool}; destroy unused instances or give a larger pool"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Net {
        Net::parse(s).unwrap()
    }

    fn route(iface: &str, s: &str) -> Route {
        Route {
            iface: iface.into(),
            net: net(s),
        }
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(net("10.199.0.0/16").to_string(), "10.199.0.0/16");
        assert_eq!(net("0.0.0.0/0").mask(), 0);
        for bad in ["10.0.0.0", "10.0.0.1/24", "10.0.0.0/33", "x/8", "10.0.0/8"] {
            assert!(Net::parse(bad).is_err(), "{bad}");
        }
        assert!(Net::parse("10.0.0.1/24")
            .unwrap_err()
            .contains("10.0.0.0/24"));
    }

    #[test]
    fn overlap_and_blocks() {
        assert!(net("10.0.0.0/8").overlaps(net("10.1.2.0/24")));
        assert!(!net("10.0.0.0/28").overlaps(net("10.0.0.16/28")));
        let b: Vec<String> = net("10.0.0.0/26")
            .blocks(28)
            .map(|n| n.to_string())
            .collect();
        assert_eq!(
            b,
            [
                "10.0.0.0/28",
                "10.0.0.16/28",
                "10.0.0.32/28",
                "10.0.0.48/28"
            ]
        );
        assert_eq!(net("10.0.0.0/16").blocks(28).count(), 4096);
    }

    #[test]
    fn reads_proc_net_route() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
            eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(
            parse_routes(text),
            [
                route("docker0", "172.17.0.0/16"),
                route("eth0", "192.0.2.0/24")
            ]
        );
    }

    #[test]
    fn picks_the_first_free_block() {
        let pool = net("10.199.0.0/16");
        assert_eq!(pick(pool, 28, &[], &[]).unwrap(), net("10.199.0.0/28"));
        let taken = [net("10.199.0.0/28"), net("10.199.0.32/28")];
        assert_eq!(pick(pool, 28, &taken, &[]).unwrap(), net("10.199.0.16/28"));
        // Another home's instance (a Docker bridge) is skipped.
        let routes = [route("br-0123456789ab", "10.199.0.16/28")];
        assert_eq!(
            pick(pool, 28, &taken, &routes).unwrap(),
            net("10.199.0.48/28")
        );
    }

    #[test]
    fn refuses_a_pool_over_the_hosts_network_and_a_full_pool() {
        let e = pick(
            net("192.0.0.0/8"),
            28,
            &[],
            &[route("eth0", "192.0.2.0/24")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("DBAAS_SUBNET_POOL") && e.contains("192.0.2.0/24") && e.contains("eth0"),
            "{e}"
        );
        let pool = net("10.199.0.0/27");
        let taken = [net("10.199.0.0/28"), net("10.199.0.16/28")];
        let e = pick(pool, 28, &taken, &[]).unwrap_err();
        assert!(matches!(e, Error::Conflict(_)), "{e}");
    }
}
