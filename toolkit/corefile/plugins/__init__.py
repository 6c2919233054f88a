"""What each CoreDNS plugin does with a query, one module per plugin as CoreDNS keeps each
plugin's knowledge in its own ``plugin/<name>/``: ``catalog`` (the names and the execution
order of plugin.cfg), ``base`` (what a plugin is asked and what it answers), ``fall`` (the
shared ``fallthrough`` option, CoreDNS's plugin/pkg/fall), ``chain`` (a server block's plugins
asked in order) and the plugin modules themselves (``registry`` lists them).
"""
