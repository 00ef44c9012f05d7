// Java client 3.9.1 consumer-group rebalances: two members share TOPIC (PARTITIONS partitions, empty), a third
// joins, then the first leaves (close -> LeaveGroup). Each member polls in its own thread. After each phase the
// program waits until the live members hold disjoint, complete, equal-sized assignments in one generation, then
// records what the clients see and what Admin.describeConsumerGroups reports. Prints one JSON line:
// {"phases":[{"clients":[{"client":"m0","generation":g,"partitions":[...]},...],
//             "admin":{"state":..,"assignor":..,"simple":..,"members":[{"client":..,"partitions":[...]}]}},...]}
//
// usage: java -cp '.tools/jars/*' GroupRebalance.java BOOTSTRAP TOPIC GROUP ASSIGNOR PARTITIONS
//        ASSIGNOR: range | roundrobin | cooperative-sticky
import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class GroupRebalance {
    static final long DEADLINE_MS = 60_000;

    static class Member implements Runnable {
        final String name;
        final Properties props;
        final String topic;
        final Thread thread;
        volatile boolean stop;
        volatile List<Integer> partitions = List.of();
        volatile int generation = -1;
        volatile Throwable failure;

        Member(String name, Properties props, String topic) {
            this.name = name;
            this.props = props;
            this.topic = topic;
            this.thread = new Thread(this, name);
        }

        public void run() {
            try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
                c.subscribe(List.of(topic));
                while (!stop) {
                    c.poll(Duration.ofMillis(100));
                    List<Integer> ps = new ArrayList<>();
                    for (TopicPartition tp : c.assignment()) ps.add(tp.partition());
                    Collections.sort(ps);
                    generation = c.groupMetadata().generationId();
                    partitions = ps;
                }
            } catch (Throwable t) {
                failure = t;
            }
        }
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], group = args[2], assignor = args[3];
        int partitions = Integer.parseInt(args[4]);
        String assignorClass = switch (assignor) {
            case "range" -> RangeAssignor.class.getName();
            case "roundrobin" -> RoundRobinAssignor.class.getName();
            case "cooperative-sticky" -> CooperativeStickyAssignor.class.getName();
            default -> throw new IllegalArgumentException(assignor);
        };
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        List<String> phases = new ArrayList<>();
        List<Member> live = new ArrayList<>();
        try (Admin admin = Admin.create(ap)) {
            live.add(start("m0", bootstrap, group, assignorClass, topic));
            live.add(start("m1", bootstrap, group, assignorClass, topic));
            phases.add(awaitPhase(admin, group, live, partitions));
            live.add(start("m2", bootstrap, group, assignorClass, topic));
            phases.add(awaitPhase(admin, group, live, partitions));
            Member first = live.remove(0);
            first.stop = true;
            first.thread.join(30_000);
            if (first.failure != null) throw new RuntimeException("m0 failed", first.failure);
            phases.add(awaitPhase(admin, group, live, partitions));
        } finally {
            for (Member m : live) m.stop = true;
            for (Member m : live) m.thread.join(30_000);
        }
        for (Member m : live) if (m.failure != null) throw new RuntimeException(m.name + " failed", m.failure);
        System.out.println("{\"phases\":[" + String.join(",", phases) + "]}");
    }

    static Member start(String name, String bootstrap, String group, String assignorClass, String topic) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, name);
        p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignorClass);
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 10000);
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 300);
        p.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, 30000);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        Member m = new Member(name, p, topic);
        m.thread.start();
        return m;
    }

    /** Waits until the members' assignments are disjoint, complete and balanced in one generation. */
    static String awaitPhase(Admin admin, String group, List<Member> members, int partitions) throws Exception {
        long deadline = System.currentTimeMillis() + DEADLINE_MS;
        String lastAdmin = "";
        while (true) {
            for (Member m : members) if (m.failure != null) throw new RuntimeException(m.name + " failed", m.failure);
            Set<Integer> all = new TreeSet<>();
            int total = 0;
            boolean balanced = true;
            Set<Integer> gens = new HashSet<>();
            for (Member m : members) {
                List<Integer> ps = m.partitions;
                total += ps.size();
                all.addAll(ps);
                balanced &= ps.size() == partitions / members.size();
                gens.add(m.generation);
            }
            if (balanced && total == partitions && all.size() == partitions && gens.size() == 1 && !gens.contains(-1)) {
                String adminView = describe(admin, group, members.size());
                lastAdmin = adminView == null ? lastView : adminView;
                if (adminView != null) {
                    StringBuilder cs = new StringBuilder();
                    for (Member m : members) {
                        if (cs.length() > 0) cs.append(',');
                        cs.append("{\"client\":\"").append(m.name).append("\",\"generation\":").append(m.generation)
                            .append(",\"partitions\":").append(m.partitions).append('}');
                    }
                    return "{\"clients\":[" + cs + "],\"admin\":" + adminView + "}";
                }
            }
            if (System.currentTimeMillis() > deadline) {
                StringBuilder s = new StringBuilder();
                for (Member m : members) s.append(m.name).append(" gen ").append(m.generation).append(' ').append(m.partitions).append("; ");
                throw new RuntimeException("no balanced assignment within " + DEADLINE_MS + " ms: " + s + "; admin: " + lastAdmin);
            }
            Thread.sleep(100);
        }
    }

    static volatile String lastView = "";

    /** The group as describeConsumerGroups sees it, or null while it does not yet show `n` Stable members. */
    static String describe(Admin admin, String group, int n) throws Exception {
        ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
        lastView = d.toString();
        if (d.members().size() != n || d.state() != org.apache.kafka.common.ConsumerGroupState.STABLE) return null;
        List<MemberDescription> ms = new ArrayList<>(d.members());
        ms.sort(Comparator.comparing(MemberDescription::clientId));
        StringBuilder b = new StringBuilder();
        for (MemberDescription m : ms) {
            List<Integer> ps = new ArrayList<>();
            for (TopicPartition tp : m.assignment().topicPartitions()) ps.add(tp.partition());
            Collections.sort(ps);
            if (b.length() > 0) b.append(',');
            b.append("{\"client\":\"").append(m.clientId()).append("\",\"partitions\":").append(ps).append('}');
        }
        return "{\"state\":\"" + d.state() + "\",\"assignor\":\"" + d.partitionAssignor() + "\",\"simple\":" + d.isSimpleConsumerGroup()
            + ",\"members\":[" + b + "]}";
    }
}
