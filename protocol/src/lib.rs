//! Wire types shared by the router, the dialer and wa-sim.
