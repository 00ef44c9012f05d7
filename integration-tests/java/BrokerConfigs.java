// Java Admin client 3.9.1: dynamic broker configs. Prints one JSON line {"s0":{...},...} with,
// per step, {"ok":true}, {"configs":{name:{"value":..,"source":..,"readOnly":..,"sensitive":..,
// "type":..,"doc":..,"synonyms":[[name,value,source],...]}}} or
// {"error":"<exception class>: <message>"}.
//
// usage: java -cp '.tools/jars/*' BrokerConfigs.java BOOTSTRAP STEP...
//   STEP = set|BROKER|key=value[|validate]   IncrementalAlterConfigs SET (BROKER "" = default)
//        | delete|BROKER|key                 IncrementalAlterConfigs DELETE
//        | append|BROKER|key=value           IncrementalAlterConfigs APPEND
//        | legacy|BROKER|k=v;k=v             AlterConfigs (replaces the whole layer)
//        | describe|BROKER[|doc]             DescribeConfigs with synonyms
import java.util.*;
import java.util.stream.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.config.ConfigResource;

public class BrokerConfigs {
    static String quote(String s) {
        if (s == null) return "null";
        return "\"" + s.replace("\\", "\\\\").replace("\"", "'").replace("\n", " ") + "\"";
    }

    static String error(Throwable e) {
        Throwable t = e.getCause() == null ? e : e.getCause();
        return "{\"error\":" + quote(t.getClass().getSimpleName() + ": " + t.getMessage()) + "}";
    }

    static String show(ConfigEntry e, boolean doc) {
        String syn = e.synonyms().stream()
            .map(s -> "[" + quote(s.name()) + "," + quote(s.value()) + "," + quote(s.source().name()) + "]")
            .collect(Collectors.joining(","));
        return "{\"value\":" + quote(e.value()) + ",\"source\":" + quote(e.source().name())
            + ",\"readOnly\":" + e.isReadOnly() + ",\"sensitive\":" + e.isSensitive()
            + ",\"type\":" + quote(e.type().name())
            + (doc ? ",\"doc\":" + quote(e.documentation()) : "")
            + ",\"synonyms\":[" + syn + "]}";
    }

    @SuppressWarnings("deprecation")
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "20000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        StringBuilder out = new StringBuilder("{");
        try (Admin admin = Admin.create(props)) {
            for (int i = 1; i < args.length; i++) {
                String[] f = args[i].split("\\|", -1);
                ConfigResource res = new ConfigResource(ConfigResource.Type.BROKER, f[1]);
                String result;
                try {
                    switch (f[0]) {
                        case "set":
                        case "append":
                        case "delete": {
                            String[] kv = f[2].split("=", 2);
                            AlterConfigOp.OpType t = f[0].equals("set") ? AlterConfigOp.OpType.SET
                                : f[0].equals("append") ? AlterConfigOp.OpType.APPEND : AlterConfigOp.OpType.DELETE;
                            AlterConfigOp op = new AlterConfigOp(new ConfigEntry(kv[0], kv.length > 1 ? kv[1] : null), t);
                            boolean validate = f.length > 3 && f[3].equals("validate");
                            admin.incrementalAlterConfigs(Map.of(res, List.of(op)),
                                new AlterConfigsOptions().validateOnly(validate)).all().get();
                            result = "{\"ok\":true}";
                            break;
                        }
                        case "legacy": {
                            List<ConfigEntry> entries = new ArrayList<>();
                            for (String kv : f[2].split(";")) {
                                if (kv.isEmpty()) continue;
                                String[] p = kv.split("=", 2);
                                entries.add(new ConfigEntry(p[0], p[1]));
                            }
                            admin.alterConfigs(Map.of(res, new Config(entries))).all().get();
                            result = "{\"ok\":true}";
                            break;
                        }
                        default: {
                            boolean doc = f.length > 2 && f[2].equals("doc");
                            Config c = admin.describeConfigs(List.of(res),
                                new DescribeConfigsOptions().includeSynonyms(true).includeDocumentation(doc))
                                .all().get().get(res);
                            result = "{\"configs\":{" + c.entries().stream()
                                .sorted(Comparator.comparing(ConfigEntry::name))
                                .map(e -> quote(e.name()) + ":" + show(e, doc))
                                .collect(Collectors.joining(",")) + "}}";
                        }
                    }
                } catch (Exception e) {
                    result = error(e);
                }
                out.append(i == 1 ? "" : ",").append("\"s").append(i - 1).append("\":").append(result);
            }
        }
        System.out.println(out.append("}"));
    }
}
