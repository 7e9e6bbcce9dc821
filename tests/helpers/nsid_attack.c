/* nsid_attack: run inside a VNET jail by tests/network.rs. It tries to reach the
 * host's network stack through rtnetlink's IFLA_TARGET_NETNSID, the way a jail's
 * root would once one of its interfaces (a veth) has a peer in the host's netns.
 *
 * usage: nsid_attack NAME
 *   1. dumps the jail's links (which makes the kernel assign ids to peer netns) and
 *      prints "LINKNSID N" for every IFLA_LINK_NETNSID seen;
 *   2. for N in 0..7 and every id seen: RTM_GETLINK and RTM_DELLINK of NAME in netns
 *      N, printing "GET N ERR" and "DEL N ERR" (ERR is 0 when the kernel did it,
 *      otherwise the errno's number).
 * Written for this project's tests only.
 */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IFLA_TARGET_NETNSID
#define IFLA_TARGET_NETNSID 46
#endif
#ifndef IFLA_LINK_NETNSID
#define IFLA_LINK_NETNSID 37
#endif

static char buf[1 << 16];

static int open_nl(void) {
    int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("netlink");
        _exit(2);
    }
    return s;
}

static void put_attr(char *msg, unsigned short type, const void *data, int len) {
    struct nlmsghdr *h = (struct nlmsghdr *)msg;
    struct rtattr *a = (struct rtattr *)(msg + NLMSG_ALIGN(h->nlmsg_len));
    a->rta_type = type;
    a->rta_len = RTA_LENGTH(len);
    memcpy(RTA_DATA(a), data, len);
    h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(a->rta_len);
}

static int seen[64];
static int nseen;

static void dump_links(void) {
    int s = open_nl();
    char req[128] = {0};
    struct nlmsghdr *h = (struct nlmsghdr *)req;
    h->nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    h->nlmsg_type = RTM_GETLINK;
    h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    h->nlmsg_seq = 1;
    if (send(s, req, h->nlmsg_len, 0) < 0) {
        perror("send dump");
        _exit(2);
    }
    for (;;) {
        int n = recv(s, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        for (struct nlmsghdr *m = (struct nlmsghdr *)buf; NLMSG_OK(m, (unsigned)n);
             m = NLMSG_NEXT(m, n)) {
            if (m->nlmsg_type == NLMSG_DONE || m->nlmsg_type == NLMSG_ERROR) {
                close(s);
                return;
            }
            if (m->nlmsg_type != RTM_NEWLINK)
                continue;
            struct ifinfomsg *ifi = NLMSG_DATA(m);
            int alen = IFLA_PAYLOAD(m);
            for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
                if (a->rta_type == IFLA_LINK_NETNSID && nseen < 64) {
                    int id = *(int *)RTA_DATA(a);
                    printf("LINKNSID %d\n", id);
                    seen[nseen++] = id;
                }
            }
        }
    }
    close(s);
}

/* One request for NAME in netns `nsid`; returns 0 or the errno. */
static int request(int type, int nsid, const char *name) {
    int s = open_nl();
    char req[256] = {0};
    struct nlmsghdr *h = (struct nlmsghdr *)req;
    h->nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    h->nlmsg_type = type;
    h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    h->nlmsg_seq = 2;
    put_attr(req, IFLA_TARGET_NETNSID, &nsid, sizeof nsid);
    put_attr(req, IFLA_IFNAME, name, strlen(name) + 1);
    if (send(s, req, h->nlmsg_len, 0) < 0) {
        int e = errno;
        close(s);
        return e;
    }
    int n = recv(s, buf, sizeof buf, 0);
    close(s);
    if (n < (int)NLMSG_LENGTH(sizeof(int)))
        return EIO;
    struct nlmsghdr *m = (struct nlmsghdr *)buf;
    if (m->nlmsg_type == NLMSG_ERROR)
        return -((struct nlmsgerr *)NLMSG_DATA(m))->error;
    /* a reply with the link: the kernel did it */
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: nsid_attack NAME\n");
        return 2;
    }
    dump_links();
    int ids[80], n = 0;
    for (int i = 0; i < 8; i++)
        ids[n++] = i;
    for (int i = 0; i < nseen; i++)
        if (seen[i] >= 8)
            ids[n++] = seen[i];
    for (int i = 0; i < n; i++) {
        printf("GET %d %d\n", ids[i], request(RTM_GETLINK, ids[i], argv[1]));
        printf("DEL %d %d\n", ids[i], request(RTM_DELLINK, ids[i], argv[1]));
    }
    return 0;
}
