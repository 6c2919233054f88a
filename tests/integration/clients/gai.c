/* One getaddrinfo(AF_UNSPEC) per iteration: the resolver call every C program makes.
   Built by the lab tests against glibc (gcc) and musl (musl-gcc -static).
   usage: gai NAME [COUNT [INTERVAL_MS]]   prints the first address of each answer */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: gai NAME [COUNT [INTERVAL_MS]]\n");
        return 2;
    }
    int n = argc > 2 ? atoi(argv[2]) : 1, ms = argc > 3 ? atoi(argv[3]) : 0, rc = 0;
    if (n < 1 || n > 100000) n = 1;
    for (int i = 0; i < n; i++) {
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        int e = getaddrinfo(argv[1], NULL, &hints, &res);
        if (e) {
            printf("error %s\n", gai_strerror(e));
            rc = 1;
        } else {
            char buf[INET6_ADDRSTRLEN];
            void *a = res->ai_family == AF_INET ? (void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr
                                                : (void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
            printf("%s\n", inet_ntop(res->ai_family, a, buf, sizeof buf));
            freeaddrinfo(res);
        }
        fflush(stdout);
        if (ms > 0 && i + 1 < n) {
            struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return rc;
}
