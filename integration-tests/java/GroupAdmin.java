// Java Admin client 3.9.1 group operations against a live consumer group, an offsets-only ("simple") group and
// a group that does not exist. One consumer (client id "live-client", range assignor) in group "live" reads
// the 30 records of TOPIC (3 partitions, created here) and commits them, then keeps polling while the admin
// steps run; "simple" gets its offsets from alterConsumerGroupOffsets. Prints one JSON line with every step's
// result keyed by step name; a failed step is {"error": ExceptionClass}.
//
// usage: java -cp '.tools/jars/*' GroupAdmin.java BOOTSTRAP TOPIC
import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.ConsumerGroupState;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class GroupAdmin {
    static final Map<String, String> results = new LinkedHashMap<>();

    interface Step {
        String run() throws Exception;
    }

    static String q(String s) {
        return s == null ? "null" : "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    static void step(String name, Step s) {
        String out;
        try {
            out = s.run();
        } catch (Exception e) {
            Throwable c = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            out = "{\"error\":" + q(c.getClass().getSimpleName()) + "}";
        }
        System.out.println(name + " " + out);
        results.put(name, out);
    }

    static class LiveConsumer implements Runnable {
        final Properties props;
        final String topic;
        final Thread thread = new Thread(this, "live");
        volatile boolean stop;
        volatile int consumed;
        volatile boolean committed;
        volatile Throwable failure;

        LiveConsumer(Properties props, String topic) {
            this.props = props;
            this.topic = topic;
        }

        public void run() {
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(props, new StringDeserializer(), new StringDeserializer())) {
                c.subscribe(List.of(topic));
                while (!stop) {
                    consumed += c.poll(Duration.ofMillis(100)).count();
                    if (consumed == 30 && !committed) {
                        c.commitSync(Duration.ofSeconds(30));
                        committed = true;
                    }
                }
            } catch (Throwable t) {
                failure = t;
            }
        }
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1];
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        ap.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        try (Admin admin = Admin.create(ap)) {
            int brokers = admin.describeCluster().nodes().get().size();
            admin.createTopics(List.of(new NewTopic(topic, 3, (short) Math.min(3, brokers)))).all().get();
            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            try (Producer<String, String> p = new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
                for (int part = 0; part < 3; part++)
                    for (int i = 0; i < 10; i++) p.send(new ProducerRecord<>(topic, part, "k" + i, "v" + i)).get();
            }

            Properties cp = new Properties();
            cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            cp.put(ConsumerConfig.GROUP_ID_CONFIG, "live");
            cp.put(ConsumerConfig.CLIENT_ID_CONFIG, "live-client");
            cp.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, RangeAssignor.class.getName());
            cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
            cp.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 10000);
            cp.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 300);
            LiveConsumer live = new LiveConsumer(cp, topic);
            live.thread.start();
            long deadline = System.currentTimeMillis() + 60_000;
            while (!live.committed) {
                if (live.failure != null) throw new RuntimeException("live consumer failed", live.failure);
                if (System.currentTimeMillis() > deadline) throw new RuntimeException("live consumer consumed " + live.consumed);
                Thread.sleep(50);
            }
            TopicPartition t0 = new TopicPartition(topic, 0), t1 = new TopicPartition(topic, 1);

            step("alter_simple", () -> {
                admin.alterConsumerGroupOffsets("simple", Map.of(t0, new OffsetAndMetadata(5, "five"), t1, new OffsetAndMetadata(6))).all().get();
                return "{\"ok\":true}";
            });
            step("list", () -> listGroups(admin.listConsumerGroups().all()));
            step("list_stable", () -> listGroups(admin.listConsumerGroups(
                new ListConsumerGroupsOptions().inStates(Set.of(ConsumerGroupState.STABLE))).all()));
            step("list_empty", () -> listGroups(admin.listConsumerGroups(
                new ListConsumerGroupsOptions().inStates(Set.of(ConsumerGroupState.EMPTY))).all()));
            step("describe", () -> describe(admin, List.of("live", "simple", "ghost")));
            step("offsets_live", () -> offsets(admin, "live"));
            step("offsets_simple", () -> offsets(admin, "simple"));
            step("offsets_ghost", () -> offsets(admin, "ghost"));
            step("offsets_live_require_stable", () -> offsets(admin, "live", true));
            step("delete_offsets_live_active", () -> deleteOffsets(admin, "live", Set.of(t0)));
            step("delete_offsets_ghost", () -> deleteOffsets(admin, "ghost", Set.of(t0)));
            step("alter_live_active", () -> {
                admin.alterConsumerGroupOffsets("live", Map.of(t0, new OffsetAndMetadata(1))).all().get();
                return "{\"ok\":true}";
            });
            step("alter_simple_again", () -> {
                admin.alterConsumerGroupOffsets("simple", Map.of(t1, new OffsetAndMetadata(2))).all().get();
                return offsets(admin, "simple");
            });
            step("delete_live_active", () -> deleteGroup(admin, "live"));
            step("delete_simple", () -> deleteGroup(admin, "simple"));
            step("delete_ghost", () -> deleteGroup(admin, "ghost"));
            step("list_after_delete", () -> listGroups(admin.listConsumerGroups().all()));
            step("offsets_simple_after_delete", () -> offsets(admin, "simple"));

            live.stop = true;
            live.thread.join(30_000);
            if (live.failure != null) throw new RuntimeException("live consumer failed", live.failure);
            step("describe_live_closed", () -> describe(admin, List.of("live")));
            step("alter_live_empty", () -> {
                admin.alterConsumerGroupOffsets("live", Map.of(t0, new OffsetAndMetadata(3))).all().get();
                return offsets(admin, "live");
            });
            step("delete_offsets_live_empty", () -> deleteOffsets(admin, "live", Set.of(t1)));
            step("delete_live_empty", () -> deleteGroup(admin, "live"));
            step("list_final", () -> listGroups(admin.listConsumerGroups().all()));
            step("offsets_live_after_delete", () -> offsets(admin, "live"));
        }
        StringBuilder all = new StringBuilder();
        for (Map.Entry<String, String> e : results.entrySet()) {
            if (all.length() > 0) all.append(',');
            all.append(q(e.getKey())).append(':').append(e.getValue());
        }
        System.out.println("{" + all + "}");
    }

    static String listGroups(KafkaFuture<Collection<ConsumerGroupListing>> f) throws Exception {
        List<ConsumerGroupListing> ls = new ArrayList<>(f.get());
        ls.sort(Comparator.comparing(ConsumerGroupListing::groupId));
        StringBuilder b = new StringBuilder();
        for (ConsumerGroupListing l : ls) {
            if (b.length() > 0) b.append(',');
            b.append("{\"group\":").append(q(l.groupId())).append(",\"simple\":").append(l.isSimpleConsumerGroup())
                .append(",\"state\":").append(q(l.state().map(Object::toString).orElse(null))).append('}');
        }
        return "{\"groups\":[" + b + "]}";
    }

    static String describe(Admin admin, List<String> groups) throws Exception {
        Map<String, ConsumerGroupDescription> ds = admin.describeConsumerGroups(groups).all().get();
        StringBuilder b = new StringBuilder();
        for (String g : groups) {
            ConsumerGroupDescription d = ds.get(g);
            StringBuilder ms = new StringBuilder();
            for (MemberDescription m : d.members()) {
                List<Integer> ps = new ArrayList<>();
                for (TopicPartition tp : m.assignment().topicPartitions()) ps.add(tp.partition());
                Collections.sort(ps);
                if (ms.length() > 0) ms.append(',');
                ms.append("{\"member\":").append(q(m.consumerId())).append(",\"client\":").append(q(m.clientId()))
                    .append(",\"host\":").append(q(m.host())).append(",\"instance\":").append(q(m.groupInstanceId().orElse(null)))
                    .append(",\"partitions\":").append(ps).append('}');
            }
            if (b.length() > 0) b.append(',');
            b.append(q(g)).append(":{\"state\":").append(q(d.state().toString())).append(",\"simple\":").append(d.isSimpleConsumerGroup())
                .append(",\"assignor\":").append(q(d.partitionAssignor())).append(",\"coordinator\":").append(d.coordinator() == null ? -1 : d.coordinator().id())
                .append(",\"members\":[").append(ms).append("]}");
        }
        return "{" + b + "}";
    }

    static String deleteOffsets(Admin admin, String group, Set<TopicPartition> tps) throws Exception {
        admin.deleteConsumerGroupOffsets(group, tps).all().get();
        return offsets(admin, group);
    }

    static String offsets(Admin admin, String group) throws Exception {
        return offsets(admin, group, false);
    }

    static String offsets(Admin admin, String group, boolean requireStable) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> m = admin.listConsumerGroupOffsets(group,
            new ListConsumerGroupOffsetsOptions().requireStable(requireStable)).partitionsToOffsetAndMetadata().get();
        TreeMap<String, String> sorted = new TreeMap<>();
        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : m.entrySet()) {
            OffsetAndMetadata o = e.getValue();
            sorted.put(e.getKey().toString(), o == null ? "null"
                : "{\"offset\":" + o.offset() + ",\"metadata\":" + q(o.metadata()) + "}");
        }
        StringBuilder b = new StringBuilder();
        for (Map.Entry<String, String> e : sorted.entrySet()) {
            if (b.length() > 0) b.append(',');
            b.append(q(e.getKey())).append(':').append(e.getValue());
        }
        return "{" + b + "}";
    }

    static String deleteGroup(Admin admin, String group) throws Exception {
        admin.deleteConsumerGroups(List.of(group)).all().get();
        return "{\"ok\":true}";
    }
}
