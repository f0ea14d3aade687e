/*
 * testhttp.c - loopback HTTP server for tests. See testhttp.h.
 */
#define _GNU_SOURCE
#include "tests/support/testhttp.h"
#include "util/timeutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct route {
    struct route *next;
    char *path, *type, *body;
    long len;
    int delay_ms;
    int hits;
} route;

struct th_server {
    int fds[2];
    int nfds;
    int port;
    int stop_pipe[2];
    pthread_t thread;
    pthread_mutex_t mu;
    route *routes;
    int conns; /* live connection threads */
    pthread_cond_t idle;
};

typedef struct conn {
    th_server *s;
    int fd;
} conn;

static int listen_on(int family, int port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int rc;
    if (family == AF_INET) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        rc = bind(fd, (struct sockaddr *)&a, sizeof(a));
    } else {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
        a.sin6_addr = in6addr_loopback;
        rc = bind(fd, (struct sockaddr *)&a, sizeof(a));
    }
    if (rc < 0 || listen(fd, 64) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void *serve_conn(void *arg)
{
    conn *c = arg;
    th_server *s = c->s;
    char buf[65536];
    size_t have = 0;
    for (;;) {
        char *end = NULL;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            if (have == sizeof(buf))
                goto done;
            ssize_t r = recv(c->fd, buf + have, sizeof(buf) - have, 0);
            if (r <= 0)
                goto done;
            have += (size_t)r;
        }
        size_t head = (size_t)(end - buf) + 4;
        char method[16] = "", target[2048] = "";
        sscanf(buf, "%15s %2047s", method, target);
        long clen = 0;
        char *cl = strcasestr(buf, "\r\nContent-Length:");
        if (cl && cl < end)
            clen = atol(cl + 17);
        /* discard the request body */
        while ((long)(have - head) < clen) {
            ssize_t r = recv(c->fd, buf + have, sizeof(buf) - have, 0);
            if (r <= 0)
                goto done;
            have += (size_t)r;
            if (have == sizeof(buf) && (long)(have - head) < clen) {
                clen -= (long)(have - head);
                have = head;
            }
        }
        size_t used = head + (size_t)clen;
        memmove(buf, buf + used, have - used);
        have -= used;

        char *q = strchr(target, '?');
        if (q)
            *q = '\0';
        pthread_mutex_lock(&s->mu);
        route *rt = s->routes;
        while (rt && strcmp(rt->path, target) != 0)
            rt = rt->next;
        char *body = NULL, type[128] = "text/plain";
        long len = 9;
        int delay = 0;
        if (rt) {
            rt->hits++;
            len = rt->len;
            body = malloc((size_t)len + 1);
            if (body)
                memcpy(body, rt->body, (size_t)len);
            snprintf(type, sizeof(type), "%s", rt->type);
            delay = rt->delay_ms;
        }
        pthread_mutex_unlock(&s->mu);
        if (delay)
            pt_sleep_ms(delay);
        char hdr[512];
        int n = snprintf(hdr, sizeof(hdr),
                         "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %ld\r\n"
                         "Cache-Control: no-store\r\nConnection: keep-alive\r\n\r\n",
                         rt ? "200 OK" : "404 Not Found", type, len);
        int bad = send_all(c->fd, hdr, (size_t)n) < 0 ||
                  (strcmp(method, "HEAD") != 0 &&
                   send_all(c->fd, body ? body : "not found", (size_t)len) < 0);
        free(body);
        if (bad)
            break;
    }
done:
    close(c->fd);
    pthread_mutex_lock(&s->mu);
    s->conns--;
    pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mu);
    free(c);
    return NULL;
}

static void *accept_loop(void *arg)
{
    th_server *s = arg;
    struct pollfd p[3];
    for (;;) {
        int n = 0;
        for (int i = 0; i < s->nfds; i++)
            p[n++] = (struct pollfd){.fd = s->fds[i], .events = POLLIN};
        p[n++] = (struct pollfd){.fd = s->stop_pipe[0], .events = POLLIN};
        if (poll(p, (nfds_t)n, -1) < 0 && errno != EINTR)
            break;
        if (p[n - 1].revents)
            break;
        for (int i = 0; i < s->nfds; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            int fd = accept4(s->fds[i], NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0)
                continue;
            conn *c = malloc(sizeof(*c));
            pthread_t t;
            if (!c) {
                close(fd);
                continue;
            }
            c->s = s;
            c->fd = fd;
            pthread_mutex_lock(&s->mu);
            s->conns++;
            pthread_mutex_unlock(&s->mu);
            if (pthread_create(&t, NULL, serve_conn, c) != 0) {
                close(fd);
                free(c);
                pthread_mutex_lock(&s->mu);
                s->conns--;
                pthread_mutex_unlock(&s->mu);
                continue;
            }
            pthread_detach(t);
        }
    }
    return NULL;
}

th_server *th_start(void)
{
    th_server *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle, NULL);
    s->fds[0] = listen_on(AF_INET, 0);
    if (s->fds[0] < 0 || pipe2(s->stop_pipe, O_CLOEXEC) < 0) {
        free(s);
        return NULL;
    }
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    getsockname(s->fds[0], (struct sockaddr *)&a, &alen);
    s->port = ntohs(a.sin_port);
    s->nfds = 1;
    int v6 = listen_on(AF_INET6, s->port);
    if (v6 >= 0)
        s->fds[s->nfds++] = v6;
    pthread_create(&s->thread, NULL, accept_loop, s);
    return s;
}

int th_port(th_server *s)
{
    return s->port;
}

void th_route(th_server *s, const char *path, const char *content_type, const char *body, long len,
              int delay_ms)
{
    if (len < 0)
        len = (long)strlen(body);
    pthread_mutex_lock(&s->mu);
    route *r = s->routes;
    while (r && strcmp(r->path, path) != 0)
        r = r->next;
    if (!r) {
        r = calloc(1, sizeof(*r));
        r->path = strdup(path);
        r->next = s->routes;
        s->routes = r;
    } else {
        free(r->body);
        free(r->type);
    }
    r->type = strdup(content_type);
    r->body = malloc((size_t)len + 1);
    memcpy(r->body, body, (size_t)len);
    r->len = len;
    r->delay_ms = delay_ms;
    pthread_mutex_unlock(&s->mu);
}

int th_hits(th_server *s, const char *path)
{
    pthread_mutex_lock(&s->mu);
    int n = 0;
    for (route *r = s->routes; r; r = r->next)
        if (strcmp(r->path, path) == 0)
            n = r->hits;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void th_stop(th_server *s)
{
    if (!s)
        return;
    if (write(s->stop_pipe[1], "x", 1) < 0)
        return;
    pthread_join(s->thread, NULL);
    for (int i = 0; i < s->nfds; i++)
        shutdown(s->fds[i], SHUT_RDWR), close(s->fds[i]);
    /* Connection threads end when their peers hang up; the browser is
     * closed before the server, so wait for them briefly. */
    pthread_mutex_lock(&s->mu);
    int64_t until = pt_mono_ms() + 3000;
    while (s->conns > 0 && pt_mono_ms() < until) {
        pthread_mutex_unlock(&s->mu);
        pt_sleep_ms(10);
        pthread_mutex_lock(&s->mu);
    }
    int left = s->conns;
    pthread_mutex_unlock(&s->mu);
    if (left > 0)
        return; /* leak rather than free under a live thread */
    while (s->routes) {
        route *r = s->routes;
        s->routes = r->next;
        free(r->path);
        free(r->type);
        free(r->body);
        free(r);
    }
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->idle);
    free(s);
}
