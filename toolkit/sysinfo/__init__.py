"""What the pod's own machine says, read without sending a packet: the resolver files as glibc
reads them (``resolvconf``, ``hosts``), routes and neighbours (``routes``), the network
namespace (``netns``), the processes beside us (``procs``) and our capabilities (``caps``)."""
