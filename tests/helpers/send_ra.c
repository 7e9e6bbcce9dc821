/* send_ra: send IPv6 router advertisements on an interface, as a router on a LAN
 * would: router lifetime 1800 s (a default route) and prefix 2001:db8:42::/64 with
 * the autonomous flag (SLAAC addresses). Used by tests/network.rs, run in a test
 * network namespace. Written for this project's tests only.
 *
 * usage: send_ra IFACE COUNT
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: send_ra IFACE COUNT\n");
        return 2;
    }
    unsigned idx = if_nametoindex(argv[1]);
    if (!idx) {
        perror(argv[1]);
        return 1;
    }
    int s = socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
    if (s < 0) {
        perror("socket");
        return 1;
    }
    int hops = 255;
    setsockopt(s, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops);
    setsockopt(s, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx);
    unsigned char pkt[16 + 32];
    memset(pkt, 0, sizeof pkt);
    struct nd_router_advert *ra = (struct nd_router_advert *)pkt;
    ra->nd_ra_type = ND_ROUTER_ADVERT;
    ra->nd_ra_curhoplimit = 64;
    ra->nd_ra_router_lifetime = htons(1800);
    struct nd_opt_prefix_info *pi = (struct nd_opt_prefix_info *)(pkt + 16);
    pi->nd_opt_pi_type = ND_OPT_PREFIX_INFORMATION;
    pi->nd_opt_pi_len = 4;
    pi->nd_opt_pi_prefix_len = 64;
    pi->nd_opt_pi_flags_reserved = ND_OPT_PI_FLAG_ONLINK | ND_OPT_PI_FLAG_AUTO;
    pi->nd_opt_pi_valid_time = htonl(86400);
    pi->nd_opt_pi_preferred_time = htonl(14400);
    inet_pton(AF_INET6, "2001:db8:42::", &pi->nd_opt_pi_prefix);
    struct sockaddr_in6 to = {.sin6_family = AF_INET6, .sin6_scope_id = idx};
    inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
    int n = atoi(argv[2]);
    for (int i = 0; i < n; i++) {
        if (sendto(s, pkt, sizeof pkt, 0, (struct sockaddr *)&to, sizeof to) < 0) {
            perror("sendto");
            return 1;
        }
        usleep(200000);
    }
    return 0;
}
